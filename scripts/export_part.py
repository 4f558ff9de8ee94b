"""Export a PyTorch Particle Transformer (weaver-core's `ParticleTransformer` layout) for
nuisance's `import_torch_part`, and make the small test fixture
tests/data/part_fixture.{safetensors,json}.

The layout nuisance reads is the state dict of weaver's module (this file's `ParT` builds a
module with the same names and shapes; it is written from the paper and weaver's documented
layout, not copied), saved with `safetensors.torch.save_file(model.state_dict(), path)`:

    embed.input_bn.{weight,bias,running_mean,running_var,num_batches_tracked}
    embed.embed.{3l}.{weight,bias}            LayerNorm before embedding layer l
    embed.embed.{3l+1}.{weight,bias}          Linear of embedding layer l (then GELU)
    pair_embed.embed.0.*                      BatchNorm1d of the 4 pair features
    pair_embed.embed.{3l+1}.{weight,bias}     Conv1d(k=1) of pair layer l
    pair_embed.embed.{3l+2}.*                 its BatchNorm1d (then GELU, except the last)
    blocks.{i}.{pre_attn_norm, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj,
                post_attn_norm, pre_fc_norm, fc1, post_fc_norm, fc2, c_attn, w_resid}
    cls_blocks.{i}.*                          the same, class attention
    norm.{weight,bias}, fc.0.{weight,bias} (fc_params = []), cls_token

Forward (eval mode) of one batch: x (N, C, P) particle features (after the data config's
standardisation), v (N, 4, P) = (px, py, pz, E), mask (N, 1, P) (1 real):
    h = embed(x) zeroed at padded particles; bias = pair_embed(pair features of v) per head;
    particle blocks (self-attention with bias and key padding mask), class blocks, norm, fc.
nuisance takes (pT, eta, phi, E) per particle and builds v = (pT cos phi, pT sin phi,
pT sinh eta, E).

Usage:
    /work/torchenv/bin/python scripts/export_part.py   # needs torch; writes the fixture

Provenance of the committed fixture: written by this script with torch (version in the JSON),
the reference logits computed in float64 from the float32 weights.
"""

import json
import math
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

EMBED_IN = ["logpt", "deta", "dphi"]
OBJECT = ["logpt", "deta", "dphi", "pt", "eta", "phi", "E"]
PAIR_IN = ["pt", "eta", "phi", "E"]
MAX_OBJECTS = 4
EMBED = [8, 8]
PAIR = [6]
HEADS = 2
BLOCKS = 1
CLS_BLOCKS = 1
CLASSES = 2
EPS = 1e-8


def pair_features(xi, xj):
    """ln kT, ln z, ln dR, ln m^2 of (px, py, pz, E) tensors (..., 4)."""
    def kin(x):
        px, py, pz, e = x.unbind(-1)
        pt = torch.sqrt(px**2 + py**2)
        rap = 0.5 * torch.log(1 + 2 * pz / (e - pz).clamp(min=1e-20))
        return pt, rap, torch.atan2(py, px)
    pti, yi, phii = kin(xi)
    ptj, yj, phij = kin(xj)
    dphi = (phii - phij + math.pi) % (2 * math.pi) - math.pi
    delta = torch.sqrt((yi - yj) ** 2 + dphi**2)
    ptmin = torch.minimum(pti, ptj)
    s = xi + xj
    m2 = (s[..., 3] ** 2 - (s[..., :3] ** 2).sum(-1)).clamp(min=EPS)
    return torch.stack([
        torch.log((ptmin * delta).clamp(min=EPS)),
        torch.log((ptmin / (pti + ptj).clamp(min=EPS)).clamp(min=EPS)),
        torch.log(delta.clamp(min=EPS)),
        torch.log(m2),
    ], -1)


class Embed(nn.Module):
    def __init__(self, c, dims):
        super().__init__()
        self.input_bn = nn.BatchNorm1d(c)
        layers = []
        for d in dims:
            layers += [nn.LayerNorm(c), nn.Linear(c, d), nn.GELU()]
            c = d
        self.embed = nn.Sequential(*layers)


class PairEmbed(nn.Module):
    def __init__(self, dims):
        super().__init__()
        layers, c = [nn.BatchNorm1d(4)], 4
        for d in dims:
            layers += [nn.Conv1d(c, d, 1), nn.BatchNorm1d(d), nn.GELU()]
            c = d
        self.embed = nn.Sequential(*layers[:-1])


class Block(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.pre_attn_norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads)
        self.post_attn_norm = nn.LayerNorm(dim)
        self.pre_fc_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.post_fc_norm = nn.LayerNorm(4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.c_attn = nn.Parameter(torch.ones(heads))
        self.w_resid = nn.Parameter(torch.ones(dim))

    def forward(self, x, pad, bias=None, cls=None):
        # x: (P, N, C) sequence first, as weaver; pad: (N, P) True at padded particles.
        if cls is None:
            res = x
            u = self.pre_attn_norm(x)
            a = self.attn(u, u, u, key_padding_mask=pad, attn_mask=bias, need_weights=False)[0]
        else:
            res = cls
            pad = torch.cat([torch.zeros_like(pad[:, :1]), pad], 1)
            u = self.pre_attn_norm(torch.cat([cls, x], 0))
            a = self.attn(cls, u, u, key_padding_mask=pad, need_weights=False)[0]
        t, n, c = a.shape
        # Per-head scale, output reordered head-minor (weaver's einsum 'tbhd,h->tbdh').
        a = (a.view(t, n, self.heads, c // self.heads) * self.c_attn[:, None]).transpose(2, 3).reshape(t, n, c)
        x = self.post_attn_norm(a) + res
        y = self.fc2(self.post_fc_norm(nn.functional.gelu(self.fc1(self.pre_fc_norm(x)))))
        return y + self.w_resid * x


class ParT(nn.Module):
    def __init__(self, c, embed, pair, heads, blocks, cls_blocks, classes):
        super().__init__()
        dim = embed[-1]
        self.heads = heads
        self.embed = Embed(c, embed)
        self.pair_embed = PairEmbed(pair + [heads])
        self.blocks = nn.ModuleList([Block(dim, heads) for _ in range(blocks)])
        self.cls_blocks = nn.ModuleList([Block(dim, heads) for _ in range(cls_blocks)])
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Sequential(nn.Linear(dim, classes))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x, v, mask):
        n, _, p = x.shape
        pad = ~mask[:, 0]
        h = self.embed.embed(self.embed.input_bn(x).permute(2, 0, 1))
        h = h.masked_fill(pad.t()[..., None], 0)
        f = pair_features(v.transpose(1, 2)[:, :, None, :], v.transpose(1, 2)[:, None, :, :])  # (N, P, P, 4)
        bias = self.pair_embed.embed(f.reshape(n, p * p, 4).transpose(1, 2)).view(n * self.heads, p, p)
        for b in self.blocks:
            h = b(h, pad, bias=bias)
        cls = self.cls_token.expand(1, n, -1)
        for b in self.cls_blocks:
            cls = b(h, pad, cls=cls)
        return self.fc(self.norm(cls)[0])


def save_safetensors(tensors, path):
    """safetensors: 8-byte header length, JSON header, raw little-endian data."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu()
        if t.dtype == torch.int64:
            data, dtype = np.ascontiguousarray(t.numpy(), dtype="<i8").tobytes(), "I64"
        else:
            data, dtype = np.ascontiguousarray(t.float().numpy(), dtype="<f4").tobytes(), "F32"
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def main():
    torch.manual_seed(20261202)
    rng = np.random.default_rng(20261202)
    model = ParT(len(EMBED_IN), EMBED, PAIR, HEADS, BLOCKS, CLS_BLOCKS, CLASSES)
    # Batch-norm statistics and every scale away from their defaults, so the folding and
    # every parameter are exercised.
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("running_mean"):
                t.copy_(torch.randn_like(t) * 0.5)
            elif name.endswith("running_var"):
                t.copy_(torch.rand_like(t) * 1.5 + 0.5)
            elif t.dtype.is_floating_point and name != "cls_token":
                t.add_(torch.randn_like(t) * 0.2)
    model.eval()
    counts = [1, 2, 3, 4, 4, 2]
    b = len(counts)
    kin = np.zeros((b, MAX_OBJECTS, 4))  # pt, eta, phi, E
    for i, k in enumerate(counts):
        pt = np.sort(rng.uniform(1.0, 20.0, k))[::-1]
        eta = rng.uniform(-0.4, 0.4, k)
        phi = rng.uniform(-0.4, 0.4, k) + 1.0
        m = rng.uniform(0.2, 1.0, k)
        kin[i, :k] = np.stack([pt, eta, phi, np.sqrt((pt * np.cosh(eta)) ** 2 + m**2)], 1)
    kin = kin.astype(np.float32).astype(np.float64)
    jet_eta, jet_phi = 0.0, 1.0
    feats = np.zeros((b, MAX_OBJECTS, len(OBJECT)))
    mask = np.zeros((b, MAX_OBJECTS), bool)
    for i, k in enumerate(counts):
        mask[i, :k] = True
        feats[i, :k, 0] = np.log(kin[i, :k, 0])
        feats[i, :k, 1] = kin[i, :k, 1] - jet_eta
        feats[i, :k, 2] = kin[i, :k, 2] - jet_phi
        feats[i, :k, 3:] = kin[i, :k]
    feats = feats.astype(np.float32).astype(np.float64)
    mean, std = np.array([1.5, 0.0, 0.0]), np.array([1.0, 0.25, 0.25])
    x = (feats[:, :, :3] - mean) / std * mask[..., None]
    pt, eta, phi, e = (kin[..., j] for j in range(4))
    v = np.stack([pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), e], 1) * mask[:, None, :]
    dmodel = ParT(len(EMBED_IN), EMBED, PAIR, HEADS, BLOCKS, CLS_BLOCKS, CLASSES).double()
    dmodel.load_state_dict({k: t.double() if t.dtype.is_floating_point else t for k, t in model.state_dict().items()})
    dmodel.eval()
    with torch.no_grad():
        logits = dmodel(torch.from_numpy(x.transpose(0, 2, 1)), torch.from_numpy(v),
                        torch.from_numpy(mask[:, None, :])).numpy()
    out = Path(__file__).resolve().parent.parent / "tests" / "data"
    save_safetensors(model.state_dict(), out / "part_fixture.safetensors")
    rows = []
    for i, k in enumerate(counts):
        rows.append([float(k)] + [float(t) for t in feats[i].reshape(-1).astype(np.float32)])
    fixture = {
        "provenance": f"scripts/export_part.py, torch {torch.__version__}, seed 20261202; logits in float64",
        "object_features": OBJECT,
        "embed_inputs": EMBED_IN,
        "pair_inputs": PAIR_IN,
        "max_objects": MAX_OBJECTS,
        "mean": mean.tolist(),
        "std": std.tolist(),
        "inputs": rows,
        "logits": logits.tolist(),
    }
    (out / "part_fixture.json").write_text(json.dumps(fixture, indent=1) + "\n")
    print("wrote", out / "part_fixture.safetensors", "and part_fixture.json")


if __name__ == "__main__":
    main()
