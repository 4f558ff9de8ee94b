//! The registered attacks, one file each: how each reads its options and runs for scripts,
//! adversarial training and s-scans. The algorithms live in `attack/` (`gradient.rs`,
//! `minifool.rs`, `rdsa.rs`, `conservattack.rs`); the list is [`crate::attack::ATTACKS`].

pub mod conservattack;
pub mod fgsm;
pub mod minifool;
pub mod pgd;
pub mod rdsa;

#[cfg(test)]
mod tests;
