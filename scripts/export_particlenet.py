"""Export a PyTorch ParticleNet (weaver-core's module) for nuisance's `import_torch_particlenet`,
and make the small test fixture tests/data/particlenet_fixture.{safetensors,json}.

The module below is weaver-core 0.5's `ParticleNet` / `EdgeConvBlock`
(weaver/nn/model/ParticleNet.py), copied without the segmentation and cpu-mode variants, so
its state dict has weaver's names:

    bn_fts.{weight,bias,running_mean,running_var}
    edge_convs.{b}.convs.{j}.weight (out x in x 1 x 1), edge_convs.{b}.bns.{j}.*,
    edge_convs.{b}.sc.weight (out x in x 1), edge_convs.{b}.sc_bn.*   (when in != out)
    fusion_block.0.weight (out x in x 1), fusion_block.1.*            (use_fusion)
    fc.{i}.0.weight, fc.{i}.0.bias (hidden), fc.{n}.weight, fc.{n}.bias (logits)

(`num_batches_tracked` buffers are written too; nuisance ignores them.) Export a trained
weaver model with `safetensors.torch.save_file(model.state_dict(), path)` (strip a wrapper's
prefix such as `pn.` first) and import it with the same conv/fc/fusion settings and the
indices of the coordinate features (weaver's `points`) among the object features. The model
takes the object features as they are (no standardisation; `bn_fts` is the input scaling).

Usage:
    /work/torchenv/bin/python scripts/export_particlenet.py   # needs torch and numpy

Provenance of the committed fixture: made with torch (version in the JSON) in eval mode, with
random weights and random batch-norm statistics, on 6 jets with 0-6 constituents (jets with
fewer than k+1 constituents exercise the zero-feature neighbours of padded slots).
"""

import json
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

OBJECT = ["deta", "dphi", "logpt"]
POINTS = [0, 1]
MAX_OBJECTS = 6
CONV = [(3, (8, 6)), (2, (6,))]
FC = [(5, 0.1)]
FUSION = True
CLASSES = 2


def knn(x, k):
    inner = -2 * torch.matmul(x.transpose(2, 1), x)
    xx = torch.sum(x ** 2, dim=1, keepdim=True)
    pairwise_distance = -xx - inner - xx.transpose(2, 1)
    idx = pairwise_distance.topk(k=k + 1, dim=-1)[1][:, :, 1:]  # (batch_size, num_points, k)
    return idx


def get_graph_feature_v1(x, k, idx):
    batch_size, num_dims, num_points = x.size()
    idx_base = torch.arange(0, batch_size, device=x.device).view(-1, 1, 1) * num_points
    idx = idx + idx_base
    idx = idx.view(-1)
    fts = x.transpose(2, 1).reshape(-1, num_dims)  # -> (batch_size, num_points, num_dims) -> (batch_size*num_points, num_dims)
    fts = fts[idx, :].view(batch_size, num_points, k, num_dims)  # neighbors: -> (batch_size*num_points*k, num_dims) -> ...
    fts = fts.permute(0, 3, 1, 2).contiguous()  # (batch_size, num_dims, num_points, k)
    x = x.view(batch_size, num_dims, num_points, 1).repeat(1, 1, 1, k)
    fts = torch.cat((x, fts - x), dim=1)  # ->(batch_size, 2*num_dims, num_points, k)
    return fts


class EdgeConvBlock(nn.Module):
    def __init__(self, k, in_feat, out_feats, batch_norm=True, activation=True):
        super().__init__()
        self.k = k
        self.batch_norm = batch_norm
        self.activation = activation
        self.num_layers = len(out_feats)
        self.convs = nn.ModuleList()
        for i in range(self.num_layers):
            self.convs.append(nn.Conv2d(2 * in_feat if i == 0 else out_feats[i - 1], out_feats[i], kernel_size=1, bias=False if self.batch_norm else True))
        if batch_norm:
            self.bns = nn.ModuleList()
            for i in range(self.num_layers):
                self.bns.append(nn.BatchNorm2d(out_feats[i]))
        if activation:
            self.acts = nn.ModuleList()
            for i in range(self.num_layers):
                self.acts.append(nn.ReLU())
        if in_feat == out_feats[-1]:
            self.sc = None
        else:
            self.sc = nn.Conv1d(in_feat, out_feats[-1], kernel_size=1, bias=False)
            self.sc_bn = nn.BatchNorm1d(out_feats[-1])
        if activation:
            self.sc_act = nn.ReLU()

    def forward(self, points, features):
        topk_indices = knn(points, self.k)
        x = get_graph_feature_v1(features, self.k, topk_indices)
        for conv, bn, act in zip(self.convs, self.bns, self.acts):
            x = conv(x)  # (N, C', P, K)
            if bn:
                x = bn(x)
            if act:
                x = act(x)
        fts = x.mean(dim=-1)  # (N, C, P)
        if self.sc:
            sc = self.sc(features)  # (N, C_out, P)
            sc = self.sc_bn(sc)
        else:
            sc = features
        return self.sc_act(sc + fts)  # (N, C_out, P)


class ParticleNet(nn.Module):
    def __init__(self, input_dims, num_classes, conv_params=[(7, (32, 32, 32)), (7, (64, 64, 64))], fc_params=[(128, 0.1)], use_fusion=True, use_fts_bn=True, use_counts=True):
        super().__init__()
        self.use_fts_bn = use_fts_bn
        if self.use_fts_bn:
            self.bn_fts = nn.BatchNorm1d(input_dims)
        self.use_counts = use_counts
        self.edge_convs = nn.ModuleList()
        for idx, layer_param in enumerate(conv_params):
            k, channels = layer_param
            in_feat = input_dims if idx == 0 else conv_params[idx - 1][1][-1]
            self.edge_convs.append(EdgeConvBlock(k=k, in_feat=in_feat, out_feats=channels))
        self.use_fusion = use_fusion
        if self.use_fusion:
            in_chn = sum(x[-1] for _, x in conv_params)
            out_chn = np.clip((in_chn // 128) * 128, 128, 1024)
            self.fusion_block = nn.Sequential(nn.Conv1d(in_chn, int(out_chn), kernel_size=1, bias=False), nn.BatchNorm1d(int(out_chn)), nn.ReLU())
        fcs = []
        for idx, layer_param in enumerate(fc_params):
            channels, drop_rate = layer_param
            if idx == 0:
                in_chn = int(out_chn) if self.use_fusion else conv_params[-1][1][-1]
            else:
                in_chn = fc_params[idx - 1][0]
            fcs.append(nn.Sequential(nn.Linear(in_chn, channels), nn.ReLU(), nn.Dropout(drop_rate)))
        fcs.append(nn.Linear(fc_params[-1][0], num_classes))
        self.fc = nn.Sequential(*fcs)

    def forward(self, points, features, mask=None):
        if mask is None:
            mask = (features.abs().sum(dim=1, keepdim=True) != 0)  # (N, 1, P)
        points *= mask
        features *= mask
        coord_shift = (mask == 0) * 1e9
        if self.use_counts:
            counts = mask.float().sum(dim=-1)
            counts = torch.max(counts, torch.ones_like(counts))  # >=1
        if self.use_fts_bn:
            fts = self.bn_fts(features) * mask
        else:
            fts = features
        outputs = []
        for idx, conv in enumerate(self.edge_convs):
            pts = (points if idx == 0 else fts) + coord_shift
            fts = conv(pts, fts) * mask
            if self.use_fusion:
                outputs.append(fts)
        if self.use_fusion:
            fts = self.fusion_block(torch.cat(outputs, dim=1)) * mask
        if self.use_counts:
            x = fts.sum(dim=-1) / counts  # divide by the real counts
        else:
            x = fts.mean(dim=-1)
        return self.fc(x)


def save_safetensors(params, path):
    """A safetensors file of F32 tensors (an 8-byte header length, a JSON header, then the raw
    little-endian data)."""
    header, blobs, offset = {}, [], 0
    for name in sorted(params):
        data = np.ascontiguousarray(params[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(params[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(20261202)
    rng = np.random.default_rng(20261202)
    model = ParticleNet(len(OBJECT), CLASSES, conv_params=CONV, fc_params=FC, use_fusion=FUSION)
    # Random batch-norm affine parameters and running statistics, so folding them is tested.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                n = m.num_features
                m.weight.copy_(torch.from_numpy(rng.uniform(0.5, 1.5, n).astype(np.float32)))
                m.bias.copy_(torch.from_numpy(rng.uniform(-0.3, 0.3, n).astype(np.float32)))
                m.running_mean.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, n).astype(np.float32)))
                m.running_var.copy_(torch.from_numpy(rng.uniform(0.5, 2.0, n).astype(np.float32)))
    model.eval()
    counts = [0, 1, 3, 5, 6, 4]
    b, f = len(counts), len(OBJECT)
    x = np.zeros((b, MAX_OBJECTS, f), np.float32)
    mask = np.zeros((b, 1, MAX_OBJECTS), np.float32)
    for i, k in enumerate(counts):
        x[i, :k, 0:2] = rng.normal(0, 0.2, (k, 2))
        x[i, :k, 2] = rng.uniform(0, 4, k)
        mask[i, 0, :k] = 1
    feats = torch.from_numpy(x.transpose(0, 2, 1).copy())
    pts = torch.from_numpy(x[:, :, POINTS].transpose(0, 2, 1).copy())
    with torch.no_grad():
        logits = model(pts, feats, torch.from_numpy(mask)).double().numpy()
    params = {k: v.detach().numpy() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    out = Path(__file__).resolve().parent.parent / "tests" / "data"
    save_safetensors(params, out / "particlenet_fixture.safetensors")
    rows = []
    for i, k in enumerate(counts):
        rows.append([float(k)] + [float(v) for v in x[i].reshape(-1)])
    n_params = sum(p.numel() for p in model.parameters())
    fixture = {
        "provenance": f"scripts/export_particlenet.py, torch {torch.__version__} (eval mode), seed 20261202",
        "object_features": OBJECT,
        "points": POINTS,
        "max_objects": MAX_OBJECTS,
        "conv": [[k, list(c)] for k, c in CONV],
        "fc": [[w, p] for w, p in FC],
        "fusion": FUSION,
        "n_params": n_params,
        "inputs": rows,
        "logits": logits.tolist(),
    }
    (out / "particlenet_fixture.json").write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out}/particlenet_fixture.* with torch {torch.__version__}, {n_params} parameters", file=sys.stderr)


if __name__ == "__main__":
    main()
