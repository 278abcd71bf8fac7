//! Inventory bundles: placeholder until the bundle writer lands.
