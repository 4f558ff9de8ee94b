//! Dataset operations (filled in next).
