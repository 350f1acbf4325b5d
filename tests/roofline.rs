//! Roofline evaluation against hand arithmetic.
