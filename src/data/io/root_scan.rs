//! A walk over every record of a ROOT file before oxyroot reads any of them.
//!
//! A ROOT file is a header followed, from `fBEGIN` to `fEND`, by records laid end to end: each
//! is a key (a `TKey` header, then the object's bytes, compressed or not) or a free gap (its
//! first 4 bytes hold minus its length). oxyroot allocates what a key claims before it reads
//! it — `fObjlen` bytes for the uncompressed object, `fNbytes` for the record — so this walk
//! checks every key first, with positioned reads of its header only (nothing is allocated
//! from a size in the file):
//!
//! * the record lies inside the file and its `fSeekKey` is where it is;
//! * `fKeylen` fits in the record and `fObjlen` is not negative; an uncompressed object fills
//!   the record exactly; a compressed one is a chain of compression blocks that ends exactly
//!   at the record's end and whose uncompressed sizes add up to `fObjlen`;
//! * `fObjlen` and `fNbytes` are within the read limit and fit in the session memory budget
//!   ([`io_guard::check_alloc`]), so the buffers oxyroot makes for them are ones a read may make;
//! * the records the header and the top directory point at (streamer list, free segments,
//!   list of keys) start a record and have its size, and every key of the top directory's
//!   list is a copy of the record it points at — oxyroot reads an object through that copy.
//!
//! What the walk cannot see, counts inside an object's bytes (a branch's `fMaxBaskets`, a
//! basket's `fNevBuf`), [`super::root_objects`] checks next, with the records and the top
//! directory's keys found here.

use std::fs::File;
use std::path::Path;

use crate::error::{Error, Result};
use crate::io_guard;

/// A key found by the walk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Record {
    pub seek: u64,
    pub nbytes: u32,
    pub objlen: u32,
    pub keylen: u16,
    pub class: String,
    pub name: String,
}

/// A key of the top directory's list: oxyroot reads an object through it (by name), with the
/// class it names and the sizes of the record at `seek` (the walk checks they agree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct DirKey {
    pub seek: u64,
    pub class: String,
    pub name: String,
}

/// What the walk found: every record in file order, and the top directory's keys.
#[derive(Clone, Debug)]
pub(super) struct Scan {
    pub records: Vec<Record>,
    pub keys: Vec<DirKey>,
}

impl Scan {
    /// The record that starts at `seek`.
    pub(super) fn record_at(&self, seek: u64) -> Option<&Record> {
        self.records.binary_search_by_key(&seek, |k| k.seek).ok().map(|i| &self.records[i])
    }
}

/// The bytes `[at, at + n)` of the file: an error naming `what` when they are not all inside it.
pub(super) fn read_bytes(path: &Path, file: &File, len: u64, at: u64, n: usize, what: &str) -> Result<Vec<u8>> {
    Reader { file, path, len }.bytes(at, n, what)
}

/// The fields of the file header the walk needs.
#[derive(Clone, Copy, Debug)]
pub(super) struct Header {
    pub begin: u64,
    pub end: u64,
    pub seek_free: u64,
    pub nbytes_free: u64,
    pub nbytes_name: u64,
    pub seek_info: u64,
    pub nbytes_info: u64,
}

/// Records a walk may visit at most (a file of this many keys is a file of gaps and headers).
const MAX_RECORDS: usize = 50_000_000;

/// Positioned reads of the file, every short read an error naming what was read.
struct Reader<'a> {
    file: &'a File,
    path: &'a Path,
    len: u64,
}

impl Reader<'_> {
    fn bytes(&self, at: u64, n: usize, what: &str) -> Result<Vec<u8>> {
        let end = at.checked_add(n as u64).filter(|&e| e <= self.len);
        if end.is_none() {
            return Err(bad(
                self.path,
                &format!("{what} at offset {at} runs past the end of the file ({} bytes)", self.len),
            ));
        }
        let mut buf = vec![0u8; n];
        read_exact_at(self.file, &mut buf, at).map_err(|e| Error::io(self.path, e))?;
        Ok(buf)
    }
}

#[cfg(unix)]
fn read_exact_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(f, buf, at)
}

#[cfg(not(unix))]
fn read_exact_at(f: &File, buf: &mut [u8], at: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = f;
    f.seek(SeekFrom::Start(at))?;
    f.read_exact(buf)
}

fn bad(path: &Path, m: &str) -> Error {
    Error::format(path, format!("not a readable ROOT file: {m}"))
}

/// Big-endian fields of a byte slice, each one a format error when the slice is too short.
struct Fields<'a> {
    b: &'a [u8],
    at: usize,
    path: &'a Path,
    what: &'a str,
}

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let s =
            self.b.get(self.at..self.at + n).ok_or_else(|| bad(self.path, &format!("{} is truncated", self.what)))?;
        self.at += n;
        Ok(s)
    }
    fn int(&mut self, n: usize) -> Result<i64> {
        let s = self.take(n)?;
        let mut be = [0u8; 8];
        be[8 - n..].copy_from_slice(s);
        let v = i64::from_be_bytes(be);
        // sign-extend the 2- and 4-byte fields
        Ok(match n {
            2 => i64::from(v as u16 as i16),
            4 => i64::from(v as u32 as i32),
            _ => v,
        })
    }
    /// A `TString`: one length byte, or 255 and a 4-byte length.
    fn string(&mut self) -> Result<String> {
        let mut n = self.int(1)? as u8 as usize;
        if n == 255 {
            n = usize::try_from(self.int(4)?)
                .map_err(|_| bad(self.path, &format!("{}: negative string length", self.what)))?;
        }
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
}

/// Every key of the file (see the module documentation), in file order, and the keys of the
/// top directory.
pub(super) fn scan(path: &Path, file: &File, len: u64, h: &Header) -> Result<Scan> {
    let r = Reader { file, path, len };
    let end = h.end.min(len);
    let free = free_segments(&r, h, end)?;
    let mut records = Vec::new();
    let mut pos = h.begin;
    while pos < end {
        if records.len() >= MAX_RECORDS {
            return Err(bad(path, &format!("more than {MAX_RECORDS} records")));
        }
        if let Ok(i) = free.binary_search_by_key(&pos, |g| g.0) {
            // a free gap listed in the free segments (uproot leaves them zeroed)
            pos = free[i].1;
            continue;
        }
        let head = r.bytes(pos, 4.min((end - pos) as usize), "a record")?;
        let mut f = Fields { b: &head, at: 0, path, what: "a record header" };
        let nbytes = f.int(4)?;
        if nbytes < 0 {
            // a free gap of -nbytes bytes, as ROOT marks them
            pos += nbytes.unsigned_abs();
            continue;
        }
        let rec = key_at(&r, pos, end)?;
        pos += u64::from(rec.nbytes);
        records.push(rec);
    }
    let keys = check_pointers(&r, h, &records)?;
    Ok(Scan { records, keys })
}

/// The free gaps `[start, end)` inside the data, sorted, from the free segments record (its
/// key checked like every other); none when the file has no such record.
fn free_segments(r: &Reader<'_>, h: &Header, end: u64) -> Result<Vec<(u64, u64)>> {
    if h.seek_free == 0 || h.nbytes_free == 0 || h.seek_free < h.begin {
        return Ok(Vec::new());
    }
    let key = key_at(r, h.seek_free, end)?;
    if u64::from(key.objlen) + u64::from(key.keylen) != u64::from(key.nbytes) {
        return Ok(Vec::new()); // compressed: ROOT and uproot never write it so
    }
    let body = r.bytes(key.seek + u64::from(key.keylen), key.objlen as usize, "the free segments")?;
    let mut f = Fields { b: &body, at: 0, path: r.path, what: "the free segments" };
    let mut gaps = Vec::new();
    while f.at < body.len() {
        let version = f.int(2)?;
        let wide = if version > 1000 { 8 } else { 4 };
        let (first, last) = (f.int(wide)?, f.int(wide)?);
        // The last segment runs from the end of the data to "infinity"; keep the gaps inside.
        if first >= 0 && last >= first && (first as u64) < end {
            gaps.push((first as u64, (last as u64).saturating_add(1)));
        }
    }
    gaps.sort_unstable();
    Ok(gaps)
}

/// The key at `pos`, checked (see the module documentation).
fn key_at(r: &Reader<'_>, pos: u64, end: u64) -> Result<Record> {
    let path = r.path;
    // The fixed part (18 bytes), then the seeks (4 or 8 bytes each), then three strings.
    let fixed = r.bytes(pos, 18.min((r.len - pos) as usize), "a key")?;
    let mut f = Fields { b: &fixed, at: 0, path, what: "a key header" };
    let nbytes = f.int(4)?;
    let version = f.int(2)?;
    let objlen = f.int(4)?;
    let _datime = f.int(4)?;
    let keylen = f.int(2)?;
    let at = |m: String| bad(path, &format!("the key at offset {pos} {m}"));
    if nbytes <= 0 || pos + nbytes as u64 > end {
        return Err(at(format!("claims {nbytes} bytes, outside the {} bytes of data", end)));
    }
    if keylen < 18 || keylen > nbytes {
        return Err(at(format!("has a header of {keylen} bytes in a record of {nbytes}")));
    }
    let header = r.bytes(pos, keylen as usize, "a key header")?;
    let mut f = Fields { b: &header, at: 18, path, what: "a key header" };
    let wide = if version > 1000 { 8 } else { 4 };
    let seek = f.int(wide)?;
    let _seek_dir = f.int(wide)?;
    let class = f.string()?;
    let name = f.string()?;
    if seek != pos as i64 {
        return Err(at(format!("('{name}', {class}) says it is at offset {seek}")));
    }
    if objlen < 0 {
        return Err(at(format!("('{name}', {class}) has a negative object size {objlen}")));
    }
    let data = (nbytes - keylen) as u64;
    let objlen_u = objlen as u64;
    if objlen_u != data {
        let blocks = uncompressed_size(r, pos + keylen as u64, pos + nbytes as u64)
            .map_err(|m| at(format!("('{name}', {class}): {m}")))?;
        if blocks != objlen_u {
            return Err(at(format!(
                "('{name}', {class}) claims an object of {objlen} bytes, but its compressed blocks hold {blocks}"
            )));
        }
    }
    // oxyroot reads the record whole (fNbytes) as well as its object (fObjlen)
    io_guard::check_alloc(
        path,
        &format!("the object '{name}' ({class}) at offset {pos}"),
        objlen_u.max(data + keylen as u64),
    )?;
    Ok(Record { seek: pos, nbytes: nbytes as u32, objlen: objlen as u32, keylen: keylen as u16, class, name })
}

/// The uncompressed size of the chain of compression blocks in `[start, end)`: each block has
/// a 9-byte header (algorithm, method, compressed and uncompressed sizes, 3 bytes each,
/// little-endian) followed by its compressed bytes.
fn uncompressed_size(r: &Reader<'_>, start: u64, end: u64) -> std::result::Result<u64, String> {
    let mut pos = start;
    let mut total = 0u64;
    while pos < end {
        if end - pos < 9 {
            return Err(format!("a compression block header at offset {pos} is cut by the end of the record"));
        }
        let h = r.bytes(pos, 9, "a compression block").map_err(|e| e.to_string())?;
        let c = u64::from(h[3]) | u64::from(h[4]) << 8 | u64::from(h[5]) << 16;
        let u = u64::from(h[6]) | u64::from(h[7]) << 8 | u64::from(h[8]) << 16;
        pos += 9 + c;
        total += u;
    }
    if pos != end {
        return Err(format!("its last compression block runs {} bytes past the end of the record", pos - end));
    }
    Ok(total)
}

/// The records the header and the top directory point at (see the module documentation); the
/// top directory's keys.
fn check_pointers(r: &Reader<'_>, h: &Header, records: &[Record]) -> Result<Vec<DirKey>> {
    let path = r.path;
    let find = |what: &str, seek: u64, nbytes: u64| -> Result<&Record> {
        records
            .binary_search_by_key(&seek, |k| k.seek)
            .ok()
            .map(|i| &records[i])
            .filter(|k| u64::from(k.nbytes) == nbytes)
            .ok_or_else(|| bad(path, &format!("{what} ({nbytes} bytes at offset {seek}) is not a record of the file")))
    };
    if h.seek_info > 0 {
        find("the streamer list", h.seek_info, h.nbytes_info)?;
    }
    if h.seek_free > 0 {
        find("the list of free segments", h.seek_free, h.nbytes_free)?;
    }
    // The top directory: TFile's name and title (fNbytesName bytes from fBEGIN), then the
    // TDirectory fields.
    let dir = r.bytes(
        h.begin + h.nbytes_name,
        42.min((r.len.saturating_sub(h.begin + h.nbytes_name)) as usize),
        "the top directory",
    )?;
    let mut f = Fields { b: &dir, at: 0, path, what: "the top directory" };
    let version = f.int(2)?;
    let _times = f.int(8)?;
    let nbytes_keys = f.int(4)?;
    let _nbytes_name = f.int(4)?;
    let wide = if version > 1000 { 8 } else { 4 };
    let _seek_dir = f.int(wide)?;
    let _seek_parent = f.int(wide)?;
    let seek_keys = f.int(wide)?;
    let (Ok(seek_keys), Ok(nbytes_keys)) = (u64::try_from(seek_keys), u64::try_from(nbytes_keys)) else {
        return Err(bad(
            path,
            &format!("the list of keys has a negative offset ({seek_keys}) or size ({nbytes_keys})"),
        ));
    };
    let list = find("the list of keys", seek_keys, nbytes_keys)?;
    if u64::from(list.objlen) + u64::from(list.keylen) != u64::from(list.nbytes) {
        // A compressed list of keys: its copies are checked when oxyroot decompresses them
        // against nothing; ROOT and uproot never compress it.
        return Err(bad(path, "the list of keys is compressed"));
    }
    let body = r.bytes(list.seek + u64::from(list.keylen), list.objlen as usize, "the list of keys")?;
    let mut f = Fields { b: &body, at: 0, path, what: "the list of keys" };
    let nkeys = f.int(4)?;
    if nkeys < 0 || nkeys as u64 * 18 > body.len() as u64 {
        return Err(bad(path, &format!("the list of keys claims {nkeys} keys in {} bytes", body.len())));
    }
    let mut keys = Vec::new();
    for i in 0..nkeys {
        let what = format!("key {i} of the list of keys");
        let nbytes = f.int(4)?;
        let version = f.int(2)?;
        let objlen = f.int(4)?;
        let _datime = f.int(4)?;
        let keylen = f.int(2)?;
        let _cycle = f.int(2)?;
        let wide = if version > 1000 { 8 } else { 4 };
        let seek = f.int(wide)?;
        let _seek_dir = f.int(wide)?;
        let class = f.string()?;
        let name = f.string()?;
        let _title = f.string()?;
        let k = find(&what, u64::try_from(seek).unwrap_or(u64::MAX), u64::try_from(nbytes).unwrap_or(u64::MAX))?;
        if i64::from(k.objlen) != objlen || i64::from(k.keylen) != keylen {
            return Err(bad(
                path,
                &format!(
                    "{what} ('{}') claims an object of {objlen} bytes after a {keylen}-byte header, but the record \
                     at offset {seek} has {} after {}",
                    k.name, k.objlen, k.keylen
                ),
            ));
        }
        keys.push(DirKey { seek: k.seek, class, name });
    }
    Ok(keys)
}
