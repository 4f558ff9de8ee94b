//! The counts inside the objects oxyroot streams, checked before it allocates from them.
//!
//! oxyroot sizes some buffers from counts it reads inside an object, before it reads the
//! elements: a TTree's cluster tables (`fNClusterRange` entries each), a branch's three basket
//! tables (`fMaxBaskets` entries each, of up to 8 bytes), a basket's entry-offset table, and a
//! basket's entry count (`fNevBuf`, the capacity of the vector of values it reads). A crafted
//! count of 2³¹ would make it reserve up to 16 GiB. So, before oxyroot streams them, this
//! module reads the same bytes the same way and bounds every such count:
//!
//! * **The TTree.** Each key of the top directory named like the chosen tree must be a
//!   `TTree`; its object is decompressed exactly as oxyroot does (same crates, same calls:
//!   `ZL` zlib, `XZ` lzma, `L4` lz4; any other algorithm is refused, oxyroot cannot read it)
//!   into `fObjlen` bytes, which the walk of [`super::root_scan`] has checked against the
//!   read limit and the memory budget. The streamer is then followed field by field as
//!   oxyroot reads it (`rtree/tree/reader.rs`, `rtree/branch/*.rs`, `rtree/leaf.rs`,
//!   `rtree/basket.rs`, `rcont/*.rs`, `rbase/*.rs` of oxyroot 0.1.25): byte-count and version
//!   headers, `kNewClassTag` class names and class references (by buffer position), and the
//!   classes oxyroot can build (TTree, TBranch, TBranchElement, the leaves, TBasket, TObjArray,
//!   TList, TObjString, the TAtt* and TIOFeatures). Every count that sizes an allocation must
//!   be non-negative and its elements must fit in the bytes left in the object — oxyroot reads
//!   them from there, so a valid object always passes — which bounds each table by twice
//!   the bytes of a checked object. An object of a streamer class inside the tree (a
//!   streamer info, a map) and nesting deeper than [`MAX_DEPTH`] are refused: ROOT never writes
//!   such classes in a tree, and deep nesting would overflow oxyroot's stack. Versions above
//!   oxyroot's are refused as oxyroot does.
//! * **The baskets.** Every basket a branch points at must be a record of the file (its
//!   offset and size those of a key the walk found), and the header oxyroot reads there is
//!   read the same way: its entry-offset table must fit in the record, and its entry count
//!   cannot exceed the basket's object size (every entry takes at least one byte of it; the
//!   vector oxyroot reserves for the entries then holds at most 32 bytes per byte of it).
//! * **The streamer list.** oxyroot reads it at open as a `TList` (`riofs/file.rs`,
//!   `read_streamer_info`) and builds whatever classes it names, recursively: it must be a
//!   `TList`, and no class that allocates from a count (TTree, TBranch, TBranchElement,
//!   TBasket) may be introduced in it (a `kNewClassTag` followed by that name; a class
//!   reference needs such a tag first; ROOT never writes these there). The list is then
//!   followed as oxyroot reads it, like the tree, through the other classes its factory builds
//!   (`rtypes/factory.rs`): TList, TObjArray, TMap, TObjString, the TAtt* and leaves, and
//!   TStreamerInfo with its element classes (`rdict/mod.rs`, `rdict/streamers/
//!   streamer_types.rs`, `rcont/tmap.rs`). oxyroot ignores byte counts (its `check_header`
//!   checks nothing), so no object is skipped by its byte count: every field is read as oxyroot
//!   reads it. Nesting deeper than [`MAX_DEPTH`] is refused: oxyroot's reader recurses once per
//!   level, and a list a hundred thousand levels deep (22 bytes each, compressing to a few
//!   kilobytes) overflows its stack, which aborts the process.
//! * **Containers.** oxyroot sizes no table from a TList, TObjArray or TMap count (it pushes
//!   each object it reads), but every object takes at least a 4-byte tag: a count above a
//!   quarter of the bytes left is refused before its objects are read.
//! * **Strings.** oxyroot reads a `TString` as a slice of its buffer (a length past the end
//!   fails before anything is allocated); this check refuses such a length too.
//!
//! oxyroot reads nothing else from the file recursively: the header, the directory, the free
//! segments and the list of keys are flat records (checked by [`super::root_scan`]), and the
//! streamer infos are later only looked up by name (`TBranchElement::streamer`), never
//! followed from one class to another.
//!
//! Every refusal is [`Error::Format`] naming the file (and the branch when there is one).

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::root_scan::{read_bytes, Record, Scan};
use crate::error::{Error, Result};

/// Objects nested inside one another at most (a tree's branches, their sub-branches, their
/// leaves; the streamer list's infos and their elements): split classes nest a handful of
/// levels, a streamer list three.
pub(super) const MAX_DEPTH: usize = 32;

/// The most a basket header may take (a key with its three names, then the basket fields);
/// uproot and ROOT write under 200 bytes.
const MAX_BASKET_HEADER: usize = 4096;

const BYTE_COUNT: u32 = 0x4000_0000;
const NEW_CLASS: u32 = 0xFFFF_FFFF;
const CLASS_MASK: u32 = 0x8000_0000;
const MAP_OFFSET: u64 = 2;

fn bad(path: &Path, m: &str) -> Error {
    Error::format(path, format!("not a readable ROOT file: {m}"))
}

/// The streamer list (read by oxyroot when it opens the file), checked as the module
/// documentation says. `seek` is the header's `fSeekInfo`.
pub(super) fn check_streamer_list(path: &Path, file: &File, len: u64, scan: &Scan, seek: u64) -> Result<()> {
    let Some(rec) = scan.record_at(seek) else {
        return Ok(()); // no streamer list: oxyroot refuses the file itself
    };
    let what = format!("the streamer list ('{}', {}) at offset {seek}", rec.name, rec.class);
    if rec.class != "TList" {
        return Err(bad(path, &format!("{what} is not a TList")));
    }
    let obj = object_bytes(path, file, len, rec).map_err(|m| bad(path, &format!("{what}: {m}")))?;
    for class in ["TTree", "TBranch", "TBranchElement", "TBasket"] {
        if introduces(&obj, class) {
            return Err(bad(path, &format!("{what} holds an object of class {class}")));
        }
    }
    // oxyroot's `read_streamer_info` builds the list through `Key::object`: a TList read from
    // the object's first byte, positions counting from the key length
    let mut s = Stream::new(&obj, u64::from(rec.keylen));
    s.streamer_list = true;
    s.list(0).map_err(|m| bad(path, &format!("{what}: {m}")))
}

/// Whether `buf` has a `kNewClassTag` followed by `class` and a NUL (or the end of the
/// buffer): the only way oxyroot's `ReadObjectAny` can come to build that class.
fn introduces(buf: &[u8], class: &str) -> bool {
    let mut pat = NEW_CLASS.to_be_bytes().to_vec();
    pat.extend_from_slice(class.as_bytes());
    buf.windows(pat.len()).enumerate().any(|(i, w)| w == pat && buf.get(i + pat.len()).is_none_or(|&b| b == 0))
}

/// The keys named `name` in the top directory (oxyroot's `get_tree` takes one of them), each
/// checked as the module documentation says, and the baskets of their branches; returns how
/// many baskets were checked.
pub(super) fn check_tree(path: &Path, file: &File, len: u64, scan: &Scan, name: &str) -> Result<usize> {
    let mut checked = 0;
    for key in scan.keys.iter().filter(|k| k.name == name) {
        let at = format!("TTree '{name}'");
        if key.class != "TTree" {
            return Err(bad(path, &format!("the key '{name}' at offset {} is a {}, not a TTree", key.seek, key.class)));
        }
        let rec = scan.record_at(key.seek).ok_or_else(|| bad(path, &format!("{at}: no record at {}", key.seek)))?;
        let obj = object_bytes(path, file, len, rec).map_err(|m| bad(path, &format!("{at}: {m}")))?;
        let mut s = Stream::new(&obj, u64::from(rec.keylen));
        s.tree(0).map_err(|m| bad(path, &format!("{at}{}: {m}", s.branch_context())))?;
        for (branch, seek, bytes) in s.baskets {
            basket(path, file, len, scan, seek, bytes)
                .map_err(|m| bad(path, &format!("{at}, branch '{branch}': the basket at offset {seek}: {m}")))?;
            checked += 1;
        }
    }
    Ok(checked)
}

/// A basket a branch points at: a record of the file, whose header (as oxyroot reads it from
/// the record's first bytes) claims no table or entry count larger than the record holds.
fn basket(path: &Path, file: &File, len: u64, scan: &Scan, seek: i64, bytes: i32) -> std::result::Result<(), String> {
    let rec = u64::try_from(seek)
        .ok()
        .and_then(|s| scan.record_at(s))
        .filter(|r| i64::from(r.nbytes) == i64::from(bytes))
        .ok_or_else(|| format!("{bytes} bytes are not a record of the file"))?;
    let n = (rec.nbytes as usize).min(MAX_BASKET_HEADER);
    let head = read_bytes(path, file, len, rec.seek, n, "a basket header").map_err(|e| e.to_string())?;
    let mut s = Stream::new(&head, 0);
    s.whole = rec.nbytes as usize;
    let (nev, _) = s.basket_fields().map_err(|m| {
        if head.len() < s.whole {
            format!("{m} (in the first {MAX_BASKET_HEADER} bytes, the most a basket header may take)")
        } else {
            m
        }
    })?;
    if i64::from(nev) > i64::from(rec.objlen) {
        return Err(format!("claims {nev} entries in an object of {} bytes", rec.objlen));
    }
    Ok(())
}

/// The object of a record, decompressed as oxyroot's `Key::load` and `rcompress::decompress`
/// do (see the module documentation).
fn object_bytes(path: &Path, file: &File, len: u64, rec: &Record) -> std::result::Result<Vec<u8>, String> {
    let data_len = (rec.nbytes - u32::from(rec.keylen)) as usize;
    let src = read_bytes(path, file, len, rec.seek + u64::from(rec.keylen), data_len, "an object")
        .map_err(|e| e.to_string())?;
    if rec.objlen as usize == data_len {
        return Ok(src);
    }
    let mut dst = vec![0u8; rec.objlen as usize];
    if dst.is_empty() {
        return Ok(dst);
    }
    let (hdr, rest) = src.split_at_checked(9).ok_or("its first compression block header is cut")?;
    let first = usize::from(hdr[6]) | usize::from(hdr[7]) << 8 | usize::from(hdr[8]) << 16;
    let fail = |e: std::io::Error| format!("its object cannot be decompressed ({e})");
    match &hdr[..2] {
        b"ZL" => flate2::read::ZlibDecoder::new(rest).read_exact(&mut dst).map_err(fail)?,
        // oxyroot reads one lzma stream and would then look for a second block header inside it
        b"XZ" if first >= dst.len() => xz2::read::XzDecoder::new(rest).read_exact(&mut dst).map_err(fail)?,
        b"L4" if rest.len() >= 8 => {
            let cap = i32::try_from(dst.len()).map_err(|_| "its object is too large".to_string())?;
            lz4::block::decompress_to_buffer(&rest[8..], Some(cap), &mut dst).map_err(fail)?;
        }
        other => {
            return Err(format!(
                "its object is compressed as '{}', which the ROOT reader cannot read",
                String::from_utf8_lossy(other)
            ))
        }
    }
    Ok(dst)
}

/// A class oxyroot's factory can build, as this check follows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Tree,
    Branch,
    BranchElement,
    Leaf,
    /// A TLeaf subclass with its min and max of this many bytes each.
    LeafOf(usize),
    LeafElement,
    Basket,
    ObjArray,
    List,
    ObjString,
    AttLine,
    AttFill,
    AttMarker,
    /// The classes of the streamer list (`rdict/mod.rs`, `rdict/streamers/streamer_types.rs`,
    /// `rcont/tmap.rs`); refused inside the tree.
    StreamerInfo,
    Element(Element),
    Map,
}

/// The TStreamerElement subclasses oxyroot's factory builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Element {
    Base,
    String,
    BasicType,
    Object,
    ObjectPointer,
    ObjectAny,
    BasicPointer,
    Stl,
    StlString,
}

impl Class {
    fn of(name: &str) -> std::result::Result<Class, String> {
        Ok(match name {
            "TTree" => Class::Tree,
            "TBranch" => Class::Branch,
            "TBranchElement" => Class::BranchElement,
            "TLeaf" => Class::Leaf,
            "TLeafO" | "TLeafB" => Class::LeafOf(1),
            "TLeafS" => Class::LeafOf(2),
            "TLeafI" | "TLeafF" | "TLeafC" => Class::LeafOf(4),
            "TLeafL" | "TLeafD" => Class::LeafOf(8),
            "TLeafElement" => Class::LeafElement,
            "TBasket" => Class::Basket,
            "TObjArray" => Class::ObjArray,
            "TList" => Class::List,
            "TObjString" => Class::ObjString,
            "TAttLine" => Class::AttLine,
            "TAttFill" => Class::AttFill,
            "TAttMarker" => Class::AttMarker,
            "TStreamerInfo" => Class::StreamerInfo,
            "TStreamerBase" => Class::Element(Element::Base),
            "TStreamerString" => Class::Element(Element::String),
            "TStreamerBasicType" => Class::Element(Element::BasicType),
            "TStreamerObject" => Class::Element(Element::Object),
            "TStreamerObjectPointer" => Class::Element(Element::ObjectPointer),
            "TStreamerObjectAny" => Class::Element(Element::ObjectAny),
            "TStreamerBasicPointer" => Class::Element(Element::BasicPointer),
            "TStreamerSTL" => Class::Element(Element::Stl),
            "TStreamerSTLstring" => Class::Element(Element::StlString),
            "TMap" => Class::Map,
            _ => return Err(format!("an object of class '{name}', which the reader cannot build")),
        })
    }

    /// Whether this check follows the class where it is introduced: the streamer list holds
    /// no tree classes (ROOT never writes them there), the tree no streamer classes.
    fn allowed(self, streamer_list: bool) -> bool {
        if streamer_list {
            !matches!(self, Class::Tree | Class::Branch | Class::BranchElement | Class::Basket)
        } else {
            !matches!(self, Class::StreamerInfo | Class::Element(_) | Class::Map)
        }
    }
}

type R<T> = std::result::Result<T, String>;

/// A big-endian object buffer read the way oxyroot's `RBuffer` reads it: positions count from
/// `offset` (the key length, as class references do), every read past the end an error.
struct Stream<'a> {
    p: &'a [u8],
    c: usize,
    offset: u64,
    /// Size of the whole buffer oxyroot reads (`p` may be its first bytes only).
    whole: usize,
    /// Classes introduced so far, by the position oxyroot files them under.
    refs: HashMap<u64, Class>,
    /// Names of the branches being read, outermost first.
    branches: Vec<String>,
    /// (branch, fBasketSeek, fBasketBytes) of every basket oxyroot will read.
    baskets: Vec<(String, i64, i32)>,
    /// Whether this is the streamer list (which classes may be introduced: [`Class::allowed`]).
    streamer_list: bool,
}

impl<'a> Stream<'a> {
    fn new(p: &'a [u8], offset: u64) -> Self {
        Stream {
            p,
            c: 0,
            offset,
            whole: p.len(),
            refs: HashMap::new(),
            branches: Vec::new(),
            baskets: Vec::new(),
            streamer_list: false,
        }
    }

    fn branch_context(&self) -> String {
        match self.branches.last() {
            Some(b) => format!(", branch '{b}'"),
            None => String::new(),
        }
    }

    fn pos(&self) -> u64 {
        self.c as u64 + self.offset
    }

    /// Bytes left in the buffer oxyroot reads.
    fn left(&self) -> usize {
        self.whole.saturating_sub(self.c)
    }

    fn take(&mut self, n: usize) -> R<&'a [u8]> {
        let p = self.p;
        let s = self.c.checked_add(n).and_then(|e| p.get(self.c..e)).ok_or("the object is truncated")?;
        self.c += n;
        Ok(s)
    }
    fn skip(&mut self, n: usize) -> R<()> {
        self.take(n).map(|_| ())
    }
    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }
    fn i16(&mut self) -> R<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> R<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> R<i32> {
        Ok(self.u32()? as i32)
    }
    fn i64(&mut self) -> R<i64> {
        let b = self.take(8)?;
        Ok(i64::from_be_bytes(b.try_into().map_err(|_| "the object is truncated")?))
    }

    /// A `TString` (`read_string`).
    fn string(&mut self) -> R<String> {
        let mut n = u32::from(self.u8()?);
        if n == 255 {
            n = self.u32()?;
        }
        Ok(String::from_utf8_lossy(self.take(n as usize)?).into_owned())
    }

    /// A class name after `kNewClassTag` (`read_cstring(80)`): up to a NUL, at most 80 bytes.
    fn cstring(&mut self) -> R<String> {
        let end = (self.c + 80).min(self.p.len());
        let window = self.p.get(self.c..end).ok_or("the object is truncated")?;
        let n = window.iter().position(|&b| b == 0).unwrap_or(window.len());
        let s = std::str::from_utf8(&window[..n]).unwrap_or("").to_string();
        self.c += n + 1;
        Ok(s)
    }

    /// A versioned header (`read_header`): the version, with or without a byte count.
    fn header(&mut self) -> R<i16> {
        let start = self.c;
        let bcnt = self.u32()?;
        if bcnt & BYTE_COUNT == 0 {
            self.c = start;
        }
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]) as i16)
    }

    fn versioned(&mut self, class: &str, max: i16) -> R<i16> {
        let v = self.header()?;
        if v > max {
            return Err(format!("{class} version {v} is newer than the reader's ({max})"));
        }
        Ok(v)
    }

    /// TObject (`rbase/object.rs`).
    fn object(&mut self) -> R<()> {
        let v = self.i16()?;
        if i64::from(v) & i64::from(BYTE_COUNT) != 0 {
            self.skip(4)?;
        }
        self.skip(4)?; // fUniqueID
        let bits = self.u32()?;
        if bits & (1 << 4) != 0 {
            self.skip(2)?;
        }
        Ok(())
    }

    /// TNamed: a header, a TObject, name and title; the name.
    fn named(&mut self) -> R<String> {
        self.header()?;
        self.object()?;
        let name = self.string()?;
        self.string()?;
        Ok(name)
    }

    fn att(&mut self, class: &str, bytes: usize) -> R<()> {
        self.versioned(class, 2)?;
        self.skip(bytes)
    }

    fn io_features(&mut self) -> R<()> {
        self.versioned("TIOFeatures", 1)?;
        if self.u8()? != 0 {
            self.skip(4)?;
        }
        Ok(())
    }

    /// `read_object_any_into`: null, a reference to an object (nothing built), a new class, or
    /// a reference to a class introduced earlier in this buffer; returns the class built.
    fn any(&mut self, depth: usize) -> R<Option<Class>> {
        let bcnt = self.u32()?;
        let (tag, start) = if bcnt & BYTE_COUNT == 0 || bcnt == NEW_CLASS {
            (bcnt, None)
        } else {
            let start = self.pos();
            (self.u32()?, Some(start))
        };
        if tag & CLASS_MASK == 0 {
            return Ok(None);
        }
        let class = if tag == NEW_CLASS {
            let name = self.cstring()?;
            let class = Class::of(&name)?;
            if !class.allowed(self.streamer_list) {
                let place = if self.streamer_list { "in the streamer list" } else { "inside the tree" };
                return Err(format!("an object of class '{name}' {place} is not supported"));
            }
            let start = start.ok_or("a class tag without a byte count")?;
            self.refs.insert(start + MAP_OFFSET, class);
            class
        } else {
            let at = u64::from(tag & !CLASS_MASK);
            *self.refs.get(&at).ok_or_else(|| format!("a reference to an unknown class (position {at})"))?
        };
        if depth >= MAX_DEPTH {
            return Err(format!("objects nested more than {MAX_DEPTH} deep"));
        }
        self.build(class, depth + 1)?;
        Ok(Some(class))
    }

    fn build(&mut self, class: Class, depth: usize) -> R<()> {
        match class {
            Class::Tree => self.tree(depth),
            Class::Branch => self.branch(depth),
            Class::BranchElement => self.branch_element(depth),
            Class::Leaf => self.leaf(depth),
            Class::LeafOf(n) => {
                self.versioned("TLeaf", 1)?;
                self.leaf(depth)?;
                self.skip(2 * n)
            }
            Class::LeafElement => {
                self.versioned("TLeafElement", 1)?;
                self.leaf(depth)?;
                self.skip(8)
            }
            Class::Basket => {
                // oxyroot makes a vector of fNevBuf values out of the buffer it holds
                let (nev, held) = self.basket_fields()?;
                if i64::from(nev) > held as i64 {
                    return Err(format!("a basket of {nev} entries holding {held} bytes"));
                }
                Ok(())
            }
            Class::ObjArray => self.obj_array(depth),
            Class::List => self.list(depth),
            Class::ObjString => {
                self.versioned("TObjString", 1)?;
                self.object()?;
                self.string().map(|_| ())
            }
            Class::AttLine => self.att("TAttLine", 6),
            Class::AttFill => self.att("TAttFill", 4),
            Class::AttMarker => self.att("TAttMarker", 8),
            Class::StreamerInfo => self.streamer_info(depth),
            Class::Element(e) => self.element(e),
            Class::Map => self.map(depth),
        }
    }

    /// TStreamerInfo (`rdict/mod.rs`): its elements are any object, which must be a TObjArray.
    fn streamer_info(&mut self, depth: usize) -> R<()> {
        self.versioned("TStreamerInfo", 9)?;
        self.named()?;
        self.skip(8)?; // fCheckSum, fClassVersion
        match self.any(depth)? {
            Some(Class::ObjArray) => Ok(()),
            other => Err(format!("a TStreamerInfo whose elements are {other:?}, not a TObjArray")),
        }
    }

    /// A TStreamerElement subclass (`rdict/streamers/streamer_types.rs`): none reads another
    /// object, none allocates from a count.
    fn element(&mut self, e: Element) -> R<()> {
        match e {
            Element::Base => {
                let v = self.versioned("TStreamerBase", 3)?;
                self.element_fields()?;
                if v > 2 {
                    self.skip(4)?; // fBaseVersion
                }
                Ok(())
            }
            Element::String => self.plain_element("TStreamerString"),
            Element::BasicType => self.plain_element("TStreamerBasicType"),
            Element::Object => self.plain_element("TStreamerObject"),
            Element::ObjectPointer => self.plain_element("TStreamerObjectPointer"),
            Element::ObjectAny => self.plain_element("TStreamerObjectAny"),
            Element::BasicPointer => {
                self.plain_element("TStreamerBasicPointer")?;
                self.skip(4)?; // fCountVersion
                self.string()?;
                self.string().map(|_| ())
            }
            Element::Stl => self.stl(),
            Element::StlString => {
                self.versioned("TStreamerSTLstring", 2)?;
                self.stl()
            }
        }
    }

    fn plain_element(&mut self, class: &str) -> R<()> {
        self.versioned(class, 2)?;
        self.element_fields()
    }

    fn stl(&mut self) -> R<()> {
        self.versioned("TStreamerSTL", 3)?;
        self.element_fields()?;
        self.skip(8) // fSTLtype, fCtype
    }

    /// The TStreamerElement base (`rdict/mod.rs`).
    fn element_fields(&mut self) -> R<()> {
        let v = self.versioned("TStreamerElement", 4)?;
        self.named()?;
        self.skip(16)?; // fType, fSize, fArrayLength, fArrayDim
        if v == 1 || v == 3 {
            // oxyroot stops there (`todo!`)
            return Err(format!("TStreamerElement version {v} is not supported by the reader"));
        }
        self.skip(20)?; // fMaxIndex
        self.string().map(|_| ()) // fTypeName
    }

    /// TMap (`rcont/tmap.rs`): pairs of objects, keyed by a TObjString.
    fn map(&mut self, depth: usize) -> R<()> {
        let v = self.header()?;
        if v > 2 {
            self.object()?;
        }
        if v > 1 {
            self.string()?;
        }
        let n = self.count("TMap")?;
        for _ in 0..n {
            let key = self.any(depth)?;
            if self.any(depth)?.is_none() || key.is_none() {
                return Err("a TMap holds a null object".into());
            }
            if key != Some(Class::ObjString) {
                return Err(format!("a TMap keyed by {key:?}"));
            }
        }
        Ok(())
    }

    /// The object count of a container: each object takes at least its 4-byte tag, so a
    /// count of more than a quarter of the bytes left cannot be read (oxyroot would run out
    /// of bytes partway; it sizes nothing from the count).
    fn count(&mut self, class: &str) -> R<i32> {
        let n = self.i32()?;
        if usize::try_from(n).is_ok_and(|n| n > self.left() / 4) {
            return Err(format!("a {class} claims {n} objects, but {} bytes are left in the object", self.left()));
        }
        Ok(n)
    }

    /// TObjArray (`rcont/objarray.rs`): no table is sized from its count, each object is read.
    fn obj_array(&mut self, depth: usize) -> R<()> {
        let v = self.versioned("TObjArray", 3)?;
        if v > 2 {
            self.object()?;
        }
        if v > 1 {
            self.string()?;
        }
        let n = self.count("TObjArray")?;
        self.skip(4)?; // fLowerBound
        for _ in 0..n {
            self.any(depth)?;
        }
        Ok(())
    }

    /// TList (`rcont/list.rs`).
    fn list(&mut self, depth: usize) -> R<()> {
        let v = self.versioned("TList", 5)?;
        if v <= 3 {
            return Err(format!("TList version {v} is older than the reader's"));
        }
        self.object()?;
        self.string()?;
        let n = self.count("TList")?;
        for _ in 0..n {
            if self.any(depth)?.is_none() {
                return Err("a TList holds a null object".into());
            }
            if self.u8()? > 0 {
                return Err("a TList holds an object with an option".into());
            }
        }
        Ok(())
    }

    /// A count of `n` elements of `size` bytes oxyroot allocates and then reads here.
    fn table(&mut self, what: &str, n: i64, size: usize) -> R<usize> {
        let fits = usize::try_from(n).ok().filter(|&n| n.checked_mul(size).is_some_and(|b| b <= self.left()));
        fits.ok_or_else(|| {
            format!("{what} = {n} claims {n} × {size} bytes, but {} bytes are left in the object", self.left())
        })
    }

    /// TTree (`rtree/tree/reader.rs`).
    fn tree(&mut self, depth: usize) -> R<()> {
        let v = self.versioned("TTree", 20)?;
        self.named()?;
        self.att("TAttLine", 6)?;
        self.att("TAttFill", 4)?;
        self.att("TAttMarker", 8)?;
        if v <= 4 {
            return Err(format!("TTree version {v} is older than the reader's"));
        }
        self.skip(32)?; // fEntries, fTotBytes, fZipBytes, fSavedBytes (i64 or f64)
        if v >= 18 {
            self.skip(8)?;
        }
        if v >= 16 {
            self.skip(8)?;
        }
        self.skip(12)?;
        if v >= 17 {
            self.skip(4)?;
        }
        let nclus = if v >= 19 { self.i32()? } else { 0 };
        if v > 5 {
            self.skip(8 + 24)?;
        } else {
            self.skip(12)?;
        }
        if v >= 18 {
            self.skip(8)?;
        }
        self.skip(if v > 5 { 8 } else { 4 })?;
        if v >= 19 {
            // both tables (a flag byte, then nclus i64 each) are allocated before either is read
            let n = self.table("fNClusterRange", i64::from(nclus), 16)?;
            for _ in 0..2 {
                self.skip(1)?;
                self.skip(n * 8)?;
            }
        }
        if v >= 20 {
            self.io_features()?;
        }
        self.obj_array(depth)?; // branches
        self.obj_array(depth)?; // leaves
        let mut rest = vec!["fAliases", "fIndexValues", "fIndex"];
        if v > 5 {
            rest.extend(["fTreeIndex", "fFriends", "fUserInfo", "fBranchRef"]);
        } else {
            rest.remove(0);
        }
        for field in rest {
            match self.any(depth)? {
                None => {}
                Some(Class::List) if field == "fUserInfo" => {}
                Some(c) => return Err(format!("{field} holds an object ({c:?}) the reader cannot use")),
            }
        }
        Ok(())
    }

    /// TBranch (`rtree/branch/tbranch.rs`): the basket tables of `fMaxBaskets` entries.
    fn branch(&mut self, depth: usize) -> R<()> {
        let v = self.versioned("TBranch", 13)?;
        if v < 6 {
            return Err(format!("TBranch version {v} is older than the reader's"));
        }
        let name = self.named()?;
        self.branches.push(name.clone());
        if v >= 10 || v > 7 {
            self.att("TAttFill", 4)?;
        }
        self.skip(12)?; // fCompress, fBasketSize, fEntryOffsetLen
        let write_basket = self.i32()?;
        if v >= 10 {
            self.skip(8)?; // fEntryNumber
            if v >= 13 {
                self.io_features()?;
            }
        } else {
            self.skip(4)?;
        }
        self.skip(4)?; // fOffset
        let max = self.i32()?;
        if v >= 10 || v > 6 {
            self.skip(4)?; // fSplitLevel
        }
        self.skip(24)?; // fEntries, fTotBytes, fZipBytes
        if v >= 11 {
            self.skip(8)?; // fFirstEntry
        }
        self.obj_array(depth)?; // sub-branches
        self.obj_array(depth)?; // leaves
        self.obj_array(depth)?; // baskets held in the branch
        let wide = if v >= 10 { 8 } else { 4 };
        let max_u = self.table_after_flag("fMaxBaskets", max, 4)?;
        let bytes: Vec<i32> = (0..max_u).map(|_| self.i32()).collect::<R<_>>()?;
        self.table_after_flag("fMaxBaskets", max, wide)?;
        self.skip(max_u * wide)?; // fBasketEntry
        let seek_wide = if v >= 10 || self.u8()? == 2 { 8 } else { 4 };
        if v >= 10 {
            self.skip(1)?;
        }
        self.table("fMaxBaskets", i64::from(max), seek_wide)?;
        let seeks: Vec<i64> = (0..max_u)
            .map(|_| if seek_wide == 8 { self.i64() } else { self.i32().map(i64::from) })
            .collect::<R<_>>()?;
        // oxyroot keeps the first fWriteBasket entries (all of them for old versions)
        let wb = usize::try_from(write_basket).ok().filter(|&w| w < max_u || (w == max_u && v < 10));
        let used = match (v >= 10, seek_wide) {
            (true, _) | (false, 8) => wb.ok_or_else(|| format!("fWriteBasket = {write_basket} of {max} baskets"))?,
            _ => max_u,
        };
        self.string()?; // fFileName
        for (&b, &s) in bytes.iter().zip(&seeks).take(used) {
            if b > 0 {
                self.baskets.push((name.clone(), s, b));
            }
        }
        self.branches.pop();
        Ok(())
    }

    /// A flag byte, then a table of `n` entries of `size` bytes: `n` checked, as a count.
    fn table_after_flag(&mut self, what: &str, n: i32, size: usize) -> R<usize> {
        self.skip(1)?;
        self.table(what, i64::from(n), size)
    }

    /// TBranchElement (`rtree/branch/tbranch_element.rs`).
    fn branch_element(&mut self, depth: usize) -> R<()> {
        let v = self.versioned("TBranchElement", 10)?;
        self.branch(depth)?;
        self.string()?; // fClassName
        if v > 1 {
            self.string()?;
            self.string()?;
            self.skip(4)?;
        }
        self.skip(if v >= 10 { 2 } else { 4 })?;
        self.skip(12)?; // fID, fType, fStreamerType
        if v > 1 {
            self.skip(4)?; // fMaximum
            for _ in 0..2 {
                if self.any(depth)?.is_some() {
                    return Err("a TBranchElement with a count branch object".into());
                }
            }
        }
        Ok(())
    }

    /// TLeaf (`rtree/leaf.rs`).
    fn leaf(&mut self, depth: usize) -> R<()> {
        self.versioned("TLeaf", 2)?;
        self.named()?;
        self.skip(12 + 2)?; // fLen, fLenType, fOffset, fIsRange, fIsUnsigned
        match self.any(depth)? {
            None | Some(Class::LeafElement) => Ok(()),
            Some(c) => Err(format!("a leaf counted by a new {c:?} object")),
        }
    }

    /// A TKey then the TBasket fields (`rtree/basket.rs`), inside a branch or at the start of
    /// a basket record; returns `fNevBuf` and the size of the buffer the basket holds, if any.
    fn basket_fields(&mut self) -> R<(i32, usize)> {
        // A negative fNbytes is a gap: oxyroot reads no more of the key, but goes on with the
        // basket fields.
        if self.i32()? >= 0 {
            let version = self.i16()?;
            self.skip(4 + 4 + 2 + 2)?; // fObjlen, fDatime, fKeylen, fCycle
            self.skip(if version > 1000 { 16 } else { 8 })?;
            for _ in 0..3 {
                self.string()?;
            }
        }
        let vers = self.i16()?;
        if vers > 3 {
            return Err(format!("TBasket version {vers} is newer than the reader's (3)"));
        }
        self.skip(4)?; // fBufferSize
        if self.i32()? < 0 {
            return Err("a negative fNevBufSize".into());
        }
        let nev = self.i32()?;
        let last = self.i32()?;
        let mut flag = self.u8()?;
        let generated = flag >= 80;
        if generated {
            flag -= 80;
        }
        if !generated && flag != 0 && flag % 10 != 2 {
            if nev > 0 {
                let n = self.i32()?;
                let n = self.table("the basket's entry offsets", i64::from(n), 4)?;
                self.skip(n * 4)?;
                if 20 < flag && flag < 40 {
                    return Err(format!("basket flag {flag}"));
                }
            }
            if flag > 40 {
                return Err(format!("basket flag {flag}"));
            }
        } else if generated && flag <= 40 {
            return Err(format!("basket flag {}", flag + 80));
        }
        let mut held = 0;
        if flag == 1 || flag > 10 {
            let sz = if vers <= 1 { self.i32()? } else { last };
            held = usize::try_from(sz).map_err(|_| format!("a basket buffer of {sz} bytes"))?;
            self.skip(held)?;
        }
        Ok((nev, held))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::io::testutil::{fixture, shared};

    /// The walk and the trees of a file, as `read_root` checks them: baskets checked per tree.
    fn check_file(p: &Path) -> Result<Vec<(String, usize)>> {
        let (file, len) = crate::io_guard::open_regular(p)?;
        let head = read_bytes(p, &file, len, 0, 53.min(len as usize), "the header")?;
        let be = |at: usize| u32::from_be_bytes(head[at..at + 4].try_into().unwrap()) as u64;
        // small-file header (tests/data/README.md): fBEGIN at 8, fEND 12, fSeekFree 16,
        // fNbytesFree 20, fNbytesName 28, fSeekInfo 37, fNbytesInfo 41
        let h = super::super::root_scan::Header {
            begin: be(8),
            end: be(12),
            seek_free: be(16),
            nbytes_free: be(20),
            nbytes_name: be(28),
            seek_info: be(37),
            nbytes_info: be(41),
        };
        let scan = super::super::root_scan::scan(p, &file, len, &h)?;
        check_streamer_list(p, &file, len, &scan, h.seek_info)?;
        let mut trees: Vec<String> = scan.keys.iter().filter(|k| k.class == "TTree").map(|k| k.name.clone()).collect();
        trees.dedup();
        trees.into_iter().map(|t| check_tree(p, &file, len, &scan, &t).map(|n| (t, n))).collect()
    }

    #[test]
    fn every_sample_tree_passes_with_its_baskets() {
        // uproot_types.root: TTree `t`, 10 branches (label, f, d, i8, u16, i64, u64, b, njag,
        // jag; scripts/make_io_fixtures.py) of 5 entries written in one basket each
        assert_eq!(check_file(&fixture("uproot_types.root")).unwrap(), vec![("t".to_string(), 10)]);
        for f in ["uproot-HZZ.root", "uproot_jagged.root", "oxyroot_vector.root", "uproot_zstd.root"] {
            let trees = check_file(&fixture(f)).unwrap();
            assert!(!trees.is_empty() && trees.iter().all(|(_, n)| *n > 0), "{f}: {trees:?}");
        }
        for f in ["pythia_qg_jets.root", "uproot-issue63.root"] {
            if let Some(p) = shared(f) {
                let trees = check_file(&p).unwrap();
                assert!(!trees.is_empty() && trees.iter().all(|(_, n)| *n > 0), "{f}: {trees:?}");
            }
        }
    }

    #[test]
    fn class_tags_are_found_only_before_a_nul_or_the_end() {
        let tag = |s: &[u8]| [&[0xFF, 0xFF, 0xFF, 0xFF][..], s].concat();
        assert!(introduces(&tag(b"TBranch\0rest"), "TBranch"));
        assert!(introduces(&[b"xx".as_slice(), &tag(b"TBranch")].concat(), "TBranch"));
        // a longer class name, a TString without the tag
        assert!(!introduces(&tag(b"TBranchElement\0"), "TBranch"));
        assert!(!introduces(b"\x07TBranch\0", "TBranch"));
    }
}
