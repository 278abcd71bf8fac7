//! Checks of PEM values on write, and their fingerprints.
