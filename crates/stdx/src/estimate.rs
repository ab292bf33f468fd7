//! Task estimates.

/// The hours of a T-shirt size, case-insensitive: `XS` 1 h, `S` 2 h, `M` 4 h, `L` 8 h,
/// `XL` 16 h (doubling per size). `None` for anything else, surrounding whitespace
/// included: callers trim and strip their own markup first.
pub fn tshirt_hours(size: &str) -> Option<f64> {
    match size.to_ascii_uppercase().as_str() {
        "XS" => Some(1.0),
        "S" => Some(2.0),
        "M" => Some(4.0),
        "L" => Some(8.0),
        "XL" => Some(16.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_double_and_ignore_case() {
        let got: Vec<_> = ["xs", "S", "m", "L", "Xl"]
            .iter()
            .map(|s| tshirt_hours(s))
            .collect();
        assert_eq!(
            got,
            vec![Some(1.0), Some(2.0), Some(4.0), Some(8.0), Some(16.0)]
        );
        assert_eq!(tshirt_hours("XXL"), None);
        assert_eq!(tshirt_hours("3h"), None);
    }
}
