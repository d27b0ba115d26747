/// Parse a comma separated list of integers into a vector.
///
/// Returns an empty vector for empty input.
#[inline]
pub fn parse_list(input: &str) -> Vec<i64> {
    input
        .split(',')
        .filter_map(|part| part.trim().parse().ok())
        .collect()
}

/// Check the parser on a tiny input value.
#[test]
fn parses_numbers() {
    let v = parse_list("1,2");
    assert_eq!(v.len(), 2);
    assert_eq!(v[0], 1);
}
