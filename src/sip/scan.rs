//! Byte search tuned for the short distances of SIP and SDP lines (20 to 80 bytes).
//!
//! `memchr` is built for long haystacks: every call goes through a function pointer, and a
//! haystack shorter than 16 bytes is searched a byte at a time. [`find`] compares 16 bytes per
//! step with SSE2 (part of every x86-64 CPU, so no runtime detection) and is inlined into the
//! header scan: callgrind counted ~100 instructions per header line for memchr.

/// The index of the first `needle` in `hay`, like `memchr::memchr`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub fn find(needle: u8, hay: &[u8]) -> Option<usize> {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    // `as`: the byte's bits, reinterpreted for the signed lane type.
    let wanted = set_splat_i8_m128i(needle as i8);
    let mask = |chunk: &[u8; 16]| {
        move_mask_i8_m128i(cmp_eq_mask_i8_m128i(load_unaligned_m128i(chunk), wanted)) as u32
    };
    let mut at = 0;
    let pair_mask = |pair: &[u8; 32]| {
        let (lo, hi) = pair.split_at(16);
        match (<&[u8; 16]>::try_from(lo), <&[u8; 16]>::try_from(hi)) {
            (Ok(lo), Ok(hi)) => u64::from(mask(lo) | mask(hi) << 16),
            _ => 0,
        }
    };
    // 32 bytes first (most header and SDP lines end within them), then 64 at a time.
    if let Some(pair) = hay.first_chunk::<32>() {
        let m = pair_mask(pair);
        if m != 0 {
            return Some(m.trailing_zeros() as usize);
        }
        at = 32;
        while let Some(quad) = hay.get(at..).and_then(<[u8]>::first_chunk::<64>) {
            let m = byte_mask(quad, needle);
            if m != 0 {
                return Some(at + m.trailing_zeros() as usize);
            }
            at += 64;
        }
    }
    while let Some(chunk) = hay.get(at..).and_then(<[u8]>::first_chunk::<16>) {
        let m = mask(chunk);
        if m != 0 {
            return Some(at + m.trailing_zeros() as usize);
        }
        at += 16;
    }
    match hay.last_chunk::<16>() {
        // The last 16 bytes, overlapping those already searched: shift their bits out.
        Some(chunk) => {
            let seen = at - (hay.len() - 16);
            let m = mask(chunk) >> seen;
            (m != 0).then(|| at + m.trailing_zeros() as usize)
        }
        None => hay.iter().position(|&b| b == needle),
    }
}

/// The index of the first `needle` in `hay`, like `memchr::memchr`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub fn find(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

/// The index of the first LF at or after `from` followed by LF or by CR LF: where a message's
/// header lines end (its empty line starts one byte later). 64 bytes per step, as a bit mask of
/// their LFs, where bit `i` pairs with bits `i + 1` and `i + 2` by shifting; blocks overlap by
/// two bytes, and the last one ends at the end of `hay`, past which there is nothing to pair
/// with. A walk from line to line (each line searched for its end, then the next line's first
/// bytes looked at) took ~700 instructions for a bodiless ACK or provisional response, masks of
/// LFs and CRs ~215 (callgrind; 16 bytes a step, each compared with the bytes one and two after
/// it, ~780); the LF mask alone took `message::no_body` from 496 to 331 instructions a message.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub fn find_headers_end(hay: &[u8], from: usize) -> Option<usize> {
    // Candidates: LFs with another LF one or two bytes on. Every empty line's LF is one (LF LF,
    // LF CR LF) and nearly no other line's is (a line of one byte); each is then checked byte by
    // byte. One mask of LFs instead of masks of LFs and CRs: ~30 fewer instructions a block.
    let candidates = |block: &[u8; 64]| {
        let lf = byte_mask(block, b'\n');
        lf & (lf >> 1 | lf >> 2)
    };
    // The first candidate that is one, bit `i` standing for `hay[base + i]`.
    let first = |mut c: u64, base: usize| {
        while c != 0 {
            let p = base.wrapping_add(c.trailing_zeros() as usize);
            if ends_headers(hay, p) {
                return Some(p);
            }
            c &= c - 1;
        }
        None
    };
    let mut at = from;
    while let Some(block) = hay.get(at..).and_then(<[u8]>::first_chunk::<64>) {
        if hay.len() - at == 64 {
            break; // the last block: its last two bits have nothing after them
        }
        // Bits 62 and 63 pair with bytes past the block: the next block's first two.
        if let Some(p) = first(candidates(block) & (u64::MAX >> 2), at) {
            return Some(p);
        }
        at += 62;
    }
    if at >= hay.len() {
        return None;
    }
    // The last block, ending at the end of `hay`: either its last 64 bytes, some of them seen
    // already (their bits shifted out), or all of `hay` from `at` after zero bytes.
    match hay.last_chunk::<64>() {
        Some(last) => {
            let base = hay.len() - 64;
            first(candidates(last) >> (at - base) << (at - base), base)
        }
        None => {
            let mut pad = [0u8; 64];
            let rest = hay.get(at..).unwrap_or_default();
            if let Some(dst) = pad.get_mut(64 - rest.len()..) {
                dst.copy_from_slice(rest);
            }
            first(candidates(&pad), (at + rest.len()).wrapping_sub(64))
        }
    }
}

/// Bit `i` is set when `block[i]` is `byte`.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
fn byte_mask(block: &[u8; 64], byte: u8) -> u64 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
    };
    // `as`: the byte's bits, reinterpreted for the signed lane type.
    let wanted = set_splat_i8_m128i(byte as i8);
    let mut m = 0u64;
    for (i, chunk) in block.as_chunks::<16>().0.iter().enumerate() {
        let v = load_unaligned_m128i(chunk);
        // `as`: a 16-bit mask, widened.
        m |= u64::from(move_mask_i8_m128i(cmp_eq_mask_i8_m128i(v, wanted)) as u16) << (16 * i);
    }
    m
}

/// The index of the first LF at or after `from` followed by LF or by CR LF.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub fn find_headers_end(hay: &[u8], from: usize) -> Option<usize> {
    (from..hay.len()).find(|&p| ends_headers(hay, p))
}

/// Whether `hay[p]` is an LF followed by LF or by CR LF.
fn ends_headers(hay: &[u8], p: usize) -> bool {
    matches!(
        (hay.get(p), hay.get(p + 1), hay.get(p + 2)),
        (Some(b'\n'), Some(b'\n'), _) | (Some(b'\n'), Some(b'\r'), Some(b'\n'))
    )
}

/// Whether `s` holds CR, LF, HT, FF or two spaces in a row: what [`super::value::fold_ws`] would
/// change. 16 bytes per step; the windows overlap by one byte so that every pair of neighbours
/// is inside one of them.
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
pub fn has_ws_to_fold(s: &[u8]) -> bool {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let hit = |c: &[u8; 16]| {
        let v = load_unaligned_m128i(c);
        // `as`: the bytes' bits, reinterpreted for the signed lane type.
        let eq = |b: u8| cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b as i8));
        let odd = bitor_m128i(
            bitor_m128i(eq(b'\r'), eq(b'\n')),
            bitor_m128i(eq(b'\t'), eq(0x0c)),
        );
        let sp = move_mask_i8_m128i(eq(b' '));
        move_mask_i8_m128i(odd) != 0 || sp & (sp >> 1) != 0
    };
    let mut at = 0;
    while let Some(c) = s.get(at..).and_then(<[u8]>::first_chunk::<16>) {
        if hit(c) {
            return true;
        }
        at += 15;
    }
    match s.last_chunk::<16>() {
        Some(c) => hit(c),
        None => {
            // NUL is neither whitespace nor a space.
            let mut pad = [0u8; 16];
            if let Some(dst) = pad.get_mut(..s.len()) {
                dst.copy_from_slice(s);
            }
            hit(&pad)
        }
    }
}

/// Whether `s` holds CR, LF, HT, FF or two spaces in a row.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
pub fn has_ws_to_fold(s: &[u8]) -> bool {
    s.iter().any(|c| matches!(c, b'\r' | b'\n' | b'\t' | 0x0c)) || s.windows(2).any(|w| w == b"  ")
}

/// Bit `i` is set when `chunk[i]` is `a` or `b`: one compare pair for the 16 bytes at the start
/// of a header line (the header-name classifier looks for its colon with it).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
#[inline]
pub fn mask_of_either(a: u8, b: u8, chunk: &[u8; 16]) -> u32 {
    use safe_arch::{
        bitor_m128i, cmp_eq_mask_i8_m128i, load_unaligned_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i,
    };
    let v = load_unaligned_m128i(chunk);
    // `as`: the bytes' bits, reinterpreted for the signed lane type.
    let hits = bitor_m128i(
        cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(a as i8)),
        cmp_eq_mask_i8_m128i(v, set_splat_i8_m128i(b as i8)),
    );
    move_mask_i8_m128i(hits) as u32
}

/// Bit `i` is set when `chunk[i]` is `a` or `b`.
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
#[inline]
pub fn mask_of_either(a: u8, b: u8, chunk: &[u8; 16]) -> u32 {
    chunk
        .iter()
        .rev()
        .fold(0, |m, &c| m << 1 | u32::from(c == a || c == b))
}

#[cfg(test)]
mod tests {
    use super::{find, find_headers_end, has_ws_to_fold, mask_of_either};
    use proptest::prelude::*;

    #[test]
    fn every_length_and_position() {
        // Past two 64-byte steps after the first 32 bytes, and the 16-byte steps and the tail
        // after them.
        for len in 0..230 {
            for at in 0..=len {
                let mut hay = vec![b'a'; len];
                if at < len {
                    hay[at] = b'\n';
                }
                let want = (at < len).then_some(at);
                assert_eq!(find(b'\n', &hay), want, "len {len} at {at}");
                if at < len {
                    hay.push(b'\n');
                    assert_eq!(find(b'\n', &hay), want, "second LF, len {len} at {at}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn ws_to_fold_as_a_byte_loop(s in proptest::collection::vec(prop_oneof![Just(b' '), Just(b' '), Just(b'\t'), Just(b'\r'), Just(b'\n'), Just(0x0cu8), Just(b'a'), any::<u8>()], 0..60)) {
            let want = s.iter().any(|c| matches!(c, b'\r' | b'\n' | b'\t' | 0x0c)) || s.windows(2).any(|w| w == b"  ");
            prop_assert_eq!(has_ws_to_fold(&s), want);
        }

        #[test]
        fn headers_end_far_in_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![40 => Just(b'a'), 2 => Just(b'\n'), 2 => Just(b'\r'), 1 => any::<u8>()], 0..400), from in 0usize..410) {
            let want = (from..hay.len()).find(|&p| super::ends_headers(&hay, p));
            prop_assert_eq!(find_headers_end(&hay, from), want);
        }

        #[test]
        fn headers_end_as_a_byte_loop(hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'\n'), Just(b' '), Just(b'a'), any::<u8>()], 0..300), from in 0usize..310) {
            let want = (from..hay.len()).find(|&p| super::ends_headers(&hay, p));
            prop_assert_eq!(find_headers_end(&hay, from), want);
        }

        #[test]
        fn same_as_memchr(hay in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(0xffu8), any::<u8>()], 0..200), needle in prop_oneof![Just(b'\n'), Just(0xffu8), any::<u8>()]) {
            prop_assert_eq!(find(needle, &hay), memchr::memchr(needle, &hay));
        }

        #[test]
        fn mask_of_either_marks_both_bytes(chunk in proptest::array::uniform16(prop_oneof![Just(b':'), Just(b'\n'), Just(0xbau8), any::<u8>()]), a in any::<u8>(), b in any::<u8>()) {
            for (a, b) in [(b':', b'\n'), (a, b)] {
                let want = chunk
                    .iter()
                    .enumerate()
                    .filter(|&(_, &c)| c == a || c == b)
                    .fold(0u32, |m, (i, _)| m | 1 << i);
                prop_assert_eq!(mask_of_either(a, b, &chunk), want);
            }
        }
    }
}
