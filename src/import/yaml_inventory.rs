//! Placeholder.
use super::builder::{ParseError, ParsedInventory};
pub fn parse_yaml_inventory(_root: &super::yaml11::Node, _inv: &mut ParsedInventory) -> Result<(), ParseError> {
    Err(ParseError::new(None, "YAML not yet supported"))
}
