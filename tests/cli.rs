//! The binary, driven as a user would.
