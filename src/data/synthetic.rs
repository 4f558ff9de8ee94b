//! Seeded synthetic generators (filled in next).
