//! Proptest strategies the rules' tests share.

use proptest::prelude::*;

/// Bytes near the edges the fast readers work at: digits, letters, space, the bytes
/// either side of `0`-`9` and of the letters, and some past ASCII.
pub(super) fn byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        6 => b'0'..=b'9',
        3 => proptest::sample::select(b"AZaz GIRgir".to_vec()),
        2 => proptest::sample::select(vec![b'/', b':', b'@', b'[', b'`', b'{', b'.', b'e', b'E', b'+', b'-', 0x06, 0xB0, 0xB9, 0xF9, 0xFA, 0xFF]),
        1 => any::<u8>(),
    ]
}
