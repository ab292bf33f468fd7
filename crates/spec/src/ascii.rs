//! The ASCII view that the hand-written scanners of `ears` and `check` share with the regular
//! expressions they replaced: the word bytes of `(?-u:\b)`, and the characters that `(?i)`
//! folds onto an ASCII letter, the only ones where an ASCII scanner and the regex differ.

/// Whether `b` is a word byte of an ASCII word boundary (`(?-u:\b)`): `[A-Za-z0-9_]`. Bytes of
/// non-ASCII characters are not word bytes.
pub(crate) fn word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Non-ASCII characters that `(?i)` folds onto an ASCII letter: `ſ` (s) and the Kelvin sign
/// (k). A test checks the list against the regex crate over every `char`.
pub(crate) const FOLDS_TO_ASCII_LETTER: [char; 2] = ['\u{17f}', '\u{212a}'];

/// Whether `text` holds a character of [`FOLDS_TO_ASCII_LETTER`]: only then may a
/// case-insensitive regular expression match where an ASCII scanner does not.
pub(crate) fn folds_to_ascii_letter(text: &str) -> bool {
    !text.is_ascii() && text.contains(FOLDS_TO_ASCII_LETTER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_to_ascii_letter_lists_every_such_char() {
        let letter = regex::Regex::new(r"(?i)\A[a-z]\z").expect("valid");
        let mut buf = [0u8; 4];
        let found: Vec<char> = (char::MIN..=char::MAX)
            .filter(|ch| !ch.is_ascii() && letter.is_match(ch.encode_utf8(&mut buf)))
            .collect();
        assert_eq!(found, FOLDS_TO_ASCII_LETTER);
    }
}
