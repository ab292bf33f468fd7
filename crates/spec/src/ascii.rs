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

/// The offsets `i`, in order, where `bytes[i..i + N]` spells one of `alts` in any case.
/// Every byte of `alts` must be a lower-case ASCII letter: `| 0x20` then folds a byte onto
/// it exactly when the byte is that letter in either case.
///
/// Eight offsets at a time (SWAR): one comparison of eight bytes per letter, and a closer
/// look only at the offsets that pass, so the cost follows how often the letters occur.
pub(crate) fn letters_at<'a, const N: usize>(
    bytes: &'a [u8],
    alts: &'a [[u8; N]],
) -> impl Iterator<Item = usize> + 'a {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const CASE: u64 = 0x2020_2020_2020_2020;
    debug_assert!(alts.iter().flatten().all(u8::is_ascii_lowercase));
    let splat = |b: u8| u64::from_le_bytes([b; 8]);
    // Bit 7 of each byte set exactly where the byte of `v` is zero.
    let zero = |v: u64| !(((v & LOW) + LOW) | v | LOW);
    let word = move |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|c| <[u8; 8]>::try_from(c).ok())
            .map(|c| u64::from_le_bytes(c) | CASE)
    };
    let block = move |base: usize| -> u64 {
        let mut words = [0u64; N];
        for (j, w) in words.iter_mut().enumerate() {
            match word(base + j) {
                Some(x) => *w = x,
                // The last bytes, one by one.
                None => {
                    return (0..8)
                        .filter(|&k| {
                            alts.iter().any(|alt| {
                                bytes.get(base + k..base + k + N).is_some_and(|w| {
                                    w.iter().zip(alt).all(|(&b, &a)| b | 0x20 == a)
                                })
                            })
                        })
                        .fold(0, |m, k| m | 0x80 << (8 * k));
                }
            }
        }
        alts.iter().fold(0, |m, alt| {
            m | words
                .iter()
                .zip(alt)
                .fold(u64::MAX, |acc, (&x, &a)| acc & zero(x ^ splat(a)))
        })
    };
    let (mut next, mut base, mut hits) = (0usize, 0usize, 0u64);
    std::iter::from_fn(move || {
        loop {
            if hits != 0 {
                let k = hits.trailing_zeros() as usize / 8;
                hits &= hits - 1;
                return Some(base + k);
            }
            if next >= bytes.len() {
                return None;
            }
            base = next;
            next = base + 8;
            hits = block(base);
        }
    })
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

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn letters_at_finds_what_a_window_search_finds(
            parts in proptest::collection::vec(
                proptest::sample::select(vec!["t", "T", "h", "H", "e", "E", "the", "THE", "a", "u", "S", "x", " ", "é", "\u{212a}", "\0", "\u{7f}"]),
                0..40,
            )
        ) {
            let text = parts.concat();
            let bytes = text.as_bytes();
            let alts = [*b"the", *b"hat"];
            let want: Vec<usize> = (0..bytes.len())
                .filter(|&i| {
                    alts.iter().any(|a| {
                        bytes.get(i..i + 3).is_some_and(|w| w.eq_ignore_ascii_case(a))
                    })
                })
                .collect();
            let got: Vec<usize> = letters_at(bytes, &alts).collect();
            proptest::prop_assert_eq!(got, want, "{:?}", text);
        }
    }
}
