//! Hostile files: every reader, fed deterministic mutations of a small valid file, returns
//! `Ok` or a clean `Error` — never a panic, an abort, a hang or a huge allocation.
//!
//! Each mutation is derived from (reader, iteration) alone, so a failure names what to
//! replay: flipped bits, 32/64-bit fields overwritten with extreme values (negative sizes,
//! `i32::MAX`, …), truncation, a chunk of the file spliced over another place, bytes inserted
//! or deleted. Half of the edits land in the region where the format keeps its sizes and
//! offsets (Parquet footer, safetensors header, ROOT header and keys). A test stops after
//! `ITERATIONS` mutations or `BUDGET` of wall time, whichever comes first, so CI time stays
//! at a few seconds per reader.
//!
//! This test binary counts the largest single allocation request (a wrapper around the
//! system allocator); a request above `HUGE` fails the test, since in the real program a
//! request that cannot be served aborts the process. For ROOT this covers the counts inside
//! objects too (a branch's `fMaxBaskets`, a basket's entry count), which are checked before
//! oxyroot allocates from them (`data/io/root_objects.rs`; the crafted files at the end).

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use nuisance::data::io::{read_csv, read_parquet, read_root, ReadOptions};
use nuisance::model::{import_torch, Activation, Mlp, MlpConfig, TorchImport};

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only a maximum is kept.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        System.realloc(p, l, new)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

/// Mutations per reader (at most).
const ITERATIONS: u64 = 1000;
/// Wall time per reader (at most).
const BUDGET: Duration = Duration::from_secs(3);
/// A read that takes longer is a hang.
const HANG: Duration = Duration::from_secs(20);
/// The largest allocation one read of a file of a few kB may request.
const HUGE: usize = 512 << 20;

/// One reader at a time, so the allocation maximum belongs to the mutation being read.
static SERIAL: Mutex<()> = Mutex::new(());

/// SplitMix64: a tiny seeded generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A mutated copy of `orig` and what was done, from `seed`. `hot` is where the format keeps
/// its sizes.
fn mutate(orig: &[u8], hot: std::ops::Range<usize>, seed: u64) -> (Vec<u8>, String) {
    let mut r = Rng(seed);
    let mut v = orig.to_vec();
    let n = v.len();
    let pos = |r: &mut Rng, width: usize| {
        let (lo, hi) = if r.below(2) == 0 && hot.end > hot.start { (hot.start, hot.end) } else { (0, n) };
        lo + r.below(hi.saturating_sub(lo).saturating_sub(width).max(1))
    };
    const I32S: [i32; 8] = [-1, i32::MIN, i32::MAX, 0, 0x4000_0000, -0x100, 0x7fff_0000, 1 << 20];
    const I64S: [i64; 6] = [-1, i64::MIN, i64::MAX, 1 << 40, 1 << 62, -(1 << 33)];
    let what = match r.below(6) {
        0 => {
            let k = 1 + r.below(8);
            for _ in 0..k {
                let p = pos(&mut r, 1);
                v[p] ^= 1 << r.below(8);
            }
            format!("{k} bit flips")
        }
        1 => {
            let p = pos(&mut r, 4);
            let x = I32S[r.below(I32S.len())];
            let b = if r.below(2) == 0 { x.to_le_bytes() } else { x.to_be_bytes() };
            let end = (p + 4).min(n);
            v[p..end].copy_from_slice(&b[..end - p]);
            format!("i32 {x} at {p}")
        }
        2 => {
            let p = pos(&mut r, 8);
            let x = I64S[r.below(I64S.len())];
            let b = if r.below(2) == 0 { x.to_le_bytes() } else { x.to_be_bytes() };
            let end = (p + 8).min(n);
            v[p..end].copy_from_slice(&b[..end - p]);
            format!("i64 {x} at {p}")
        }
        3 => {
            let keep = r.below(n);
            v.truncate(keep);
            format!("truncated to {keep} bytes")
        }
        4 => {
            let len = 1 + r.below(256.min(n));
            let from = r.below(n - len + 1);
            let to = pos(&mut r, len);
            let end = (to + len).min(n);
            let chunk = orig[from..from + (end - to)].to_vec();
            v[to..end].copy_from_slice(&chunk);
            format!("{len} bytes from {from} spliced at {to}")
        }
        _ => {
            let p = pos(&mut r, 1);
            if r.below(2) == 0 {
                let len = 1 + r.below(64);
                let bytes: Vec<u8> = (0..len).map(|_| r.next() as u8).collect();
                v.splice(p..p, bytes);
                format!("{len} random bytes inserted at {p}")
            } else {
                let len = 1 + r.below(64).min(n - p - 1);
                v.drain(p..p + len);
                format!("{len} bytes deleted at {p}")
            }
        }
    };
    (v, what)
}

/// Feeds `ITERATIONS` mutations of `orig` to `read` and checks each outcome.
fn fuzz(tag: &str, orig: &[u8], hot: std::ops::Range<usize>, ext: &str, read: fn(&Path) -> Result<(), String>) {
    let huge = HUGE;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("nuisance_hostile_{tag}_{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let start = Instant::now();
    let (mut ok, mut err) = (0, 0);
    for i in 0..ITERATIONS {
        if start.elapsed() > BUDGET {
            break;
        }
        let seed = i ^ fnv(tag);
        let (bytes, what) = mutate(orig, hot.clone(), seed);
        let path: PathBuf = dir.join(format!("m{i}.{ext}"));
        std::fs::write(&path, &bytes).unwrap();
        LARGEST.store(0, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel();
        let p = path.clone();
        let worker = std::thread::spawn(move || {
            let _ = tx.send(read(&p));
        });
        let outcome = match rx.recv_timeout(HANG) {
            Ok(r) => r,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("{tag} #{i} ({what}): the read hangs"),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = worker.join();
                panic!("{tag} #{i} ({what}): the reader panicked")
            }
        };
        let _ = worker.join();
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(largest <= huge, "{tag} #{i} ({what}): an allocation of {largest} bytes was requested");
        match outcome {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(!e.is_empty(), "{tag} #{i} ({what}): empty error message");
                err += 1;
            }
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{tag}: {ok} read, {err} refused");
    assert!(ok + err > 20, "{tag}: too few mutations ran ({})", ok + err);
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3))
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)).unwrap()
}

fn msg<T>(r: nuisance::Result<T>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

#[test]
fn mutated_parquet_files_never_crash() {
    // pyarrow-written: zstd, 2 row groups, dictionary columns (tests/data/README.md).
    let orig = fixture("pyarrow_mixed.parquet");
    let n = orig.len();
    fuzz("parquet", &orig, n.saturating_sub(2048)..n, "parquet", |p| msg(read_parquet(p, &ReadOptions::default())));
}

#[test]
fn mutated_csv_files_never_crash() {
    let rows = "1.5,2,0,1,x\n-3,4e1,1,0.5,\"y,z\"\n7,1e-3,1,2,w\n";
    let orig = format!("a,b,label,weight,name\n{}", rows.repeat(4)).into_bytes();
    fuzz("csv", &orig, 0..orig.len(), "csv", |p| msg(read_csv(p, &ReadOptions::default())));
}

#[test]
fn mutated_root_files_never_crash() {
    // uproot-written TTree `t`: one flat branch per type and a jagged one (tests/data/README.md).
    let orig = fixture("uproot_types.root");
    fuzz("root", &orig, 0..1024, "root", |p| {
        let all = ["f", "d", "i8", "u16", "i64", "u64", "b"].map(String::from).to_vec();
        msg(read_root(p, &ReadOptions { features: Some(all), ..ReadOptions::default() }))
    });
}

#[test]
fn mutated_saved_models_never_crash() {
    let cfg = MlpConfig { feature_names: Some(vec!["a".into(), "b".into(), "c".into()]), ..MlpConfig::default() };
    let m = Mlp::new(&[3, 5, 1], cfg).unwrap();
    let dir = std::env::temp_dir().join(format!("nuisance_hostile_model_{}", std::process::id()));
    let p = dir.join("m.safetensors");
    m.save(&p).unwrap();
    let orig = std::fs::read(&p).unwrap();
    let header = 8 + u64::from_le_bytes(orig[..8].try_into().unwrap()) as usize;
    fuzz("model", &orig, 0..header, "safetensors", |p| msg(Mlp::load(p)));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn mutated_torch_state_dicts_never_crash() {
    // PyTorch's 20→64→64→64→1 state dict: the header holds every shape and offset.
    let orig = fixture("reference_mlp.safetensors");
    let header = 8 + u64::from_le_bytes(orig[..8].try_into().unwrap()) as usize;
    fuzz("torch", &orig, 0..header, "safetensors", |p| {
        let spec = TorchImport { activation: Some(Activation::Relu), raw_inputs: true, ..TorchImport::default() };
        msg(import_torch(p, &spec))
    });
}

/// `uproot_types.root` with the big-endian i32 at `at` replaced by `v`, read with every branch.
fn patched_root(tag: &str, at: usize, v: i32) -> (PathBuf, Result<(), String>, usize) {
    let mut b = fixture("uproot_types.root");
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
    let p = std::env::temp_dir().join(format!("nuisance_hostile_{tag}_{}.root", std::process::id()));
    std::fs::write(&p, b).unwrap();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    LARGEST.store(0, Ordering::Relaxed);
    let all = ["f", "d", "i8", "u16", "i64", "u64", "b"].map(String::from).to_vec();
    let r = msg(read_root(&p, &ReadOptions { features: Some(all), ..ReadOptions::default() }));
    let largest = LARGEST.load(Ordering::Relaxed);
    let _ = std::fs::remove_file(&p);
    (p, r, largest)
}

#[test]
fn root_key_sizes_are_checked_before_oxyroot_allocates() {
    // Records of uproot_types.root (tests/data/README.md; offsets from a walk of the file):
    // a TBasket key at 230 (85 bytes, 65-byte header, 20 bytes stored uncompressed), a
    // compressed TBasket of `jag` at 1007 (102 bytes, 67-byte header, 108 bytes uncompressed), and the
    // TTree key at 1625. A key header is fNbytes, fVersion (2 bytes), fObjlen at +6, …
    // fObjlen = i32::MAX claims 2 GiB for one object.
    let (p, r, largest) = patched_root("basket_objlen", 1007 + 6, i32::MAX);
    let e = r.unwrap_err();
    let want = format!(
        "{}: not a readable ROOT file: the key at offset 1007 ('jag', TBasket) claims an object of 2147483647 bytes, \
         but its compressed blocks hold 108",
        p.display()
    );
    assert_eq!(e, want);
    assert!(largest < 1 << 20, "{largest} bytes requested");
    // An uncompressed basket claiming more than it holds is read as a compressed one, whose
    // blocks then make no sense.
    let (_, r, largest) = patched_root("plain_objlen", 230 + 6, i32::MAX);
    assert!(r.unwrap_err().contains("the key at offset 230 ('f', TBasket): "));
    assert!(largest < 1 << 20, "{largest} bytes requested");
    // fNbytes of the TTree key pointing past the end of the file
    let (_, r, _) = patched_root("tree_nbytes", 1625, 0x7fff_0000);
    let e = r.unwrap_err();
    assert!(e.contains("the key at offset 1625 claims 2147418112 bytes, outside the 26531 bytes of data"), "{e}");
}

#[test]
fn root_objects_must_fit_in_the_session_budget() {
    // Serial: the allocation tracker is process-wide; a test reading while another measures
    // would count as the other's allocation.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The first record after the directory of uproot-HZZ.root is a basket of Muon_Px at
    // offset 222 (16964 bytes, 23008 once decompressed, from a walk of the file); with 10000
    // bytes of budget the walk stops there, before oxyroot reads anything, naming the file.
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/uproot-HZZ.root");
    let budget = nuisance::memory::Budget::new(10_000);
    let _g = nuisance::memory::enter(budget);
    let e = read_root(&p, &ReadOptions::default()).unwrap_err();
    assert_eq!(e.kind(), "memory");
    let want = format!(
        "{}: the object 'Muon_Px' (TBasket) at offset 222: needs 22.5 KiB, but the session memory budget of \
         9.8 KiB has 9.8 KiB left (0 B in use)",
        p.display()
    );
    assert_eq!(e.to_string(), want);
}

#[test]
fn root_counts_inside_the_tree_are_checked_before_oxyroot_allocates() {
    // The TTree `t` of uproot_types.root is stored uncompressed at 1625 (a 43-byte key header,
    // then 5250 bytes). Inside it (ROOT's streamer layout, TTree version 20): its header (6
    // bytes), TNamed "t" (19), TAttLine (12), TAttFill (10), TAttMarker (14), fEntries …
    // fDefaultEntryOffsetLen (64 bytes), then fNClusterRange at 1625 + 43 + 125 = 1793.
    let orig = fixture("uproot_types.root");
    assert_eq!(&orig[1793..1797], &0i32.to_be_bytes(), "fNClusterRange");
    let (p, r, largest) = patched_root("nclus", 1793, i32::MAX);
    assert!(largest < 1 << 20, "{largest} bytes requested");
    let e = r.unwrap_err();
    assert!(
        e.starts_with(&format!(
            "{}: not a readable ROOT file: TTree 't': fNClusterRange = 2147483647 claims 2147483647 × 16 bytes",
            p.display()
        )),
        "{e}"
    );
    // Branch `f`: its TNamed's strings "f" and "f/F" end at 1625 + 43 + 259; then TAttFill (10),
    // fCompress, fBasketSize, fEntryOffsetLen, fWriteBasket (4 bytes each), fEntryNumber (8),
    // TIOFeatures (11), fOffset (4): fMaxBaskets at 1976, which uproot sets to 10.
    assert_eq!(&orig[1976..1980], &10i32.to_be_bytes(), "fMaxBaskets");
    let (_, r, largest) = patched_root("max_baskets", 1976, i32::MAX);
    assert!(largest < 1 << 20, "{largest} bytes requested");
    let e = r.unwrap_err();
    assert!(e.contains("TTree 't', branch 'f': fMaxBaskets = 2147483647 claims 2147483647 × 4 bytes, but "), "{e}");
    let (_, r, _) = patched_root("neg_max_baskets", 1976, -1);
    assert!(r.unwrap_err().contains("branch 'f': fMaxBaskets = -1 claims"));
    // fWriteBasket (1976 - 27 = 1949; uproot wrote 1) beyond the 10 baskets
    assert_eq!(&orig[1949..1953], &1i32.to_be_bytes(), "fWriteBasket");
    let (_, r, _) = patched_root("write_basket", 1949, 11);
    assert!(r.unwrap_err().contains("branch 'f': fWriteBasket = 11 of 10 baskets"));
}

#[test]
fn root_basket_headers_are_checked_before_oxyroot_allocates() {
    // The basket of `f` at 230: a key of 85 bytes (version 1004: 8-byte seeks) whose header
    // is fNbytes, fVersion, fObjlen (20: 5 floats), fDatime, fKeylen, fCycle (18 bytes), two
    // seeks (16), "TBasket", "f", "t" (12), then the basket's version (2), fBufferSize (4),
    // fNevBufSize (4) and fNevBuf at 230 + 56 = 286, which is 5.
    let orig = fixture("uproot_types.root");
    assert_eq!(&orig[286..290], &5i32.to_be_bytes(), "fNevBuf");
    let (_, r, largest) = patched_root("nev_buf", 286, i32::MAX);
    assert!(largest < 1 << 20, "{largest} bytes requested");
    let e = r.unwrap_err();
    assert!(
        e.contains(
            "TTree 't', branch 'f': the basket at offset 230: claims 2147483647 entries in an object of 20 bytes"
        ),
        "{e}"
    );
}

#[test]
fn root_streamer_list_may_not_build_branches() {
    // Serial: the allocation tracker is process-wide; a test reading while another measures
    // would count as the other's allocation.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // The streamer list of uproot_types.root is stored uncompressed (at 6918, from the header);
    // its first "TStreamerBase" class tag renamed "TBranch" would make oxyroot build a branch
    // (and size its basket tables) out of streamer bytes.
    let mut b = fixture("uproot_types.root");
    let tag = b"\xff\xff\xff\xffTStreamerBase\0";
    let at = b.windows(tag.len()).position(|w| w == tag).expect("a TStreamerBase tag") + 4;
    assert!(at > 6918);
    b[at..at + 8].copy_from_slice(b"TBranch\0");
    let p = std::env::temp_dir().join(format!("nuisance_hostile_streamers_{}.root", std::process::id()));
    std::fs::write(&p, b).unwrap();
    let e = msg(read_root(&p, &ReadOptions::default())).unwrap_err();
    let _ = std::fs::remove_file(&p);
    assert!(
        e.ends_with("the streamer list ('StreamerInfo', TList) at offset 6918 holds an object of class TBranch"),
        "{e}"
    );
}

#[test]
fn root_vector_lengths_are_checked_before_anything_is_reserved() {
    // oxyroot_vector.root (written by oxyroot, uncompressed): the first entry of the
    // std::vector<float> branch `part_pt`, [1, 2, 3], is a byte count and version
    // (40000012 0009), its length 3 at 441, then 1.0, 2.0, 3.0 — the only place these 16
    // bytes occur. A length of i32::MAX would have oxyroot reserve 8 GiB for the entry.
    let mut b = fixture("oxyroot_vector.root");
    let entry = [3i32.to_be_bytes(), 1f32.to_be_bytes(), 2f32.to_be_bytes(), 3f32.to_be_bytes()].concat();
    assert_eq!(b.windows(16).position(|w| w == entry.as_slice()), Some(441));
    b[441..445].copy_from_slice(&i32::MAX.to_be_bytes());
    let p = std::env::temp_dir().join(format!("nuisance_hostile_vector_{}.root", std::process::id()));
    std::fs::write(&p, b).unwrap();
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    LARGEST.store(0, Ordering::Relaxed);
    let e = msg(read_root(&p, &ReadOptions::default())).unwrap_err();
    let largest = LARGEST.load(Ordering::Relaxed);
    let _ = std::fs::remove_file(&p);
    assert!(largest < 1 << 20, "{largest} bytes requested");
    assert_eq!(
        e,
        format!("{}: reading branch 'part_pt': an entry claims 2147483647 values, but holds 12 bytes", p.display())
    );
}

#[test]
fn root_streamer_list_nesting_is_bounded() {
    // Serial: the allocation tracker is process-wide; a test reading while another measures
    // would count as the other's allocation.
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // uproot_types.root's streamer list: a key at 6918 of 19542 bytes (fSeekInfo and
    // fNbytesInfo in the header at 37 and 41), a 64-byte key header, an uncompressed TList.
    // It is replaced by a zlib-compressed TList nested LEVELS deep, each list holding the
    // next: a class reference (4 bytes, to the "TList" class tag of the first one), the
    // version (2), a TObject (10), an empty name (1), the count (4), and after the inner list
    // its option byte (1). Nested that deep, oxyroot's recursive reading overflows its stack
    // (the process aborts); the check stops at depth 32. The rest of the old record becomes
    // a free gap (a negative fNbytes, as ROOT marks them).
    const LEVELS: usize = 100_000;
    let mut b = fixture("uproot_types.root");
    let (seek, nbytes, keylen) = (6918usize, 19542usize, 64usize);
    assert_eq!(&b[37..45], [(seek as i32).to_be_bytes(), (nbytes as i32).to_be_bytes()].concat().as_slice());
    let list_body = |n: i32| [&[0, 5, 0, 1, 0, 0, 0, 0, 3, 0, 0, 0, 0][..], &n.to_be_bytes()].concat();
    let mut obj = list_body(1);
    // the first inner list introduces the class: a byte count, kNewClassTag, "TList"
    // oxyroot files the class under the position after the byte count, plus kMapOffset (2)
    let class_at = keylen + obj.len() + 4 + 2;
    obj.extend_from_slice(&0x4000_0000u32.to_be_bytes());
    obj.extend_from_slice(b"\xff\xff\xff\xffTList\0");
    obj.extend(list_body(1));
    let reference = (0x8000_0000u32 | class_at as u32).to_be_bytes();
    for i in 2..LEVELS {
        obj.extend_from_slice(&reference);
        obj.extend(list_body(i32::from(i + 1 < LEVELS)));
    }
    obj.extend(std::iter::repeat_n(0u8, LEVELS - 1)); // the option bytes
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut z, &obj).unwrap();
    let z = z.finish().unwrap();
    let le3 = |n: usize| [n as u8, (n >> 8) as u8, (n >> 16) as u8];
    let block = [&b"ZL\x08"[..], &le3(z.len()), &le3(obj.len()), &z].concat();
    let new_nbytes = keylen + block.len();
    assert!(new_nbytes + 4 <= nbytes, "{new_nbytes} bytes do not fit");
    // the key header: fNbytes at +0, fObjlen at +6
    b[seek..seek + 4].copy_from_slice(&(new_nbytes as i32).to_be_bytes());
    b[seek + 6..seek + 10].copy_from_slice(&(obj.len() as i32).to_be_bytes());
    b[seek + keylen..seek + new_nbytes].copy_from_slice(&block);
    b[seek + new_nbytes..seek + new_nbytes + 4].copy_from_slice(&(-((nbytes - new_nbytes) as i32)).to_be_bytes());
    b[41..45].copy_from_slice(&(new_nbytes as i32).to_be_bytes());
    let p = std::env::temp_dir().join(format!("nuisance_hostile_nested_{}.root", std::process::id()));
    std::fs::write(&p, b).unwrap();
    let e = msg(read_root(&p, &ReadOptions::default())).unwrap_err();
    let _ = std::fs::remove_file(&p);
    assert_eq!(
        e,
        format!(
            "{}: not a readable ROOT file: the streamer list ('StreamerInfo', TList) at offset 6918: objects \
             nested more than 32 deep",
            p.display()
        )
    );
}
