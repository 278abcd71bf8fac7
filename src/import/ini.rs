//! Placeholder.
use super::builder::{ParseError, ParsedInventory};
pub fn parse_ini_inventory(_text: &str, _inv: &mut ParsedInventory) -> Result<(), ParseError> {
    Err(ParseError::new(None, "INI not yet supported"))
}
