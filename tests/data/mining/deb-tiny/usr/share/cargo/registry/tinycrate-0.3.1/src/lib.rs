/// Parses a duration such as `90s` or `2m` into seconds.
#[must_use]
pub fn parse_duration(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.len() - 1);
    let value: u64 = number.parse().ok()?;
    match unit {
        "s" => Some(value),
        "m" => Some(value * 60),
        _ => None,
    }
}
