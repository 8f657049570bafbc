//! Rate planning.
