//! Reading the fine-tuning options of `train` (`freeze`, `reinit`, `group_lr`,
//! `standardize`) into the domain's [`GroupRef`] and [`Standardize`].

use rhai::{Array, Dynamic, Map};

use crate::bindings::options::{type_name, Opts};
use crate::error::{Error, Result};
use crate::model::{GroupRef, Standardize};

fn bad(key: &str, problem: String) -> Error {
    Error::BadOption { func: "train".into(), key: key.into(), problem }
}

/// One group: a name (string) or an index (integer, negative from the end).
fn group(key: &str, v: &Dynamic) -> Result<GroupRef> {
    if let Ok(i) = v.as_int() {
        return Ok(GroupRef::Index(i));
    }
    match v.clone().into_immutable_string() {
        Ok(s) => Ok(GroupRef::Name(s.to_string())),
        Err(_) => Err(bad(key, format!("must name groups by string or index, got {} ({v})", type_name(v)))),
    }
}

/// A list of groups (one group alone counts as a list of one); empty when absent.
pub fn groups(o: &mut Opts, key: &'static str) -> Result<Vec<GroupRef>> {
    let Some(v) = o.raw(key).filter(|v| !v.is_unit()) else { return Ok(Vec::new()) };
    let list = v.read_lock::<Array>().map(|a| a.clone());
    match list {
        Some(a) => a.iter().map(|e| group(key, e)).collect(),
        None => Ok(vec![group(key, &v)?]),
    }
}

/// `group_lr`: a map from group (a name, or an index written as a string: "-1") to its
/// learning rate.
pub fn group_lr(o: &mut Opts) -> Result<Vec<(GroupRef, f64)>> {
    let Some(v) = o.raw("group_lr").filter(|v| !v.is_unit()) else { return Ok(Vec::new()) };
    let Some(m) = v.read_lock::<Map>().map(|m| m.clone()) else {
        return Err(bad("group_lr", format!("must be a map from group to learning rate, got {}", type_name(&v))));
    };
    m.iter()
        .map(|(k, lr)| {
            let lr = crate::bindings::options::as_f64(lr).ok_or_else(|| {
                bad("group_lr", format!("the learning rate of '{k}' must be a number, got {}", type_name(lr)))
            })?;
            let g = match k.parse::<i64>() {
                Ok(i) => GroupRef::Index(i),
                Err(_) => GroupRef::Name(k.to_string()),
            };
            Ok((g, lr))
        })
        .collect()
}

/// `standardize`: "auto" (default), "keep", "refit", or true (refit) / false (keep).
pub fn standardize(o: &mut Opts) -> Result<Standardize> {
    let Some(v) = o.raw("standardize").filter(|v| !v.is_unit()) else { return Ok(Standardize::Auto) };
    if let Ok(b) = v.as_bool() {
        return Ok(if b { Standardize::Refit } else { Standardize::Keep });
    }
    match v.clone().into_immutable_string() {
        Ok(s) => Standardize::parse(&s),
        Err(_) => Err(bad(
            "standardize",
            format!("must be \"auto\", \"keep\", \"refit\", true or false, got {}", type_name(&v)),
        )),
    }
}
