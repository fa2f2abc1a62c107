//! Words of channels for the integer dot products: which instruction a
//! CPU has, and how it packs a group of channels' weights or activations
//! into one 32-bit word.

/// The dot-product instruction a [`PlaneQConv`] runs, which decides how
/// many channels share a 32-bit word of the patch matrix and the panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dot {
    /// AVX-512 VNNI's `vpdpbusd`: four byte lanes per word.
    Vnni,
    /// AVX-VNNI's `vpdpbusd`, the same without AVX-512.
    AvxVnni,
    /// AVX2's `vpmaddwd`: two 16-bit lanes per word.
    Avx2,
}

impl Dot {
    /// Those this CPU has, fastest first.
    pub fn available() -> impl Iterator<Item = Dot> {
        let vnni = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512vnni");
        let avx2 = is_x86_feature_detected!("avx2");
        let avx_vnni = avx2 && is_x86_feature_detected!("avxvnni");
        [
            (Dot::Vnni, vnni),
            (Dot::AvxVnni, avx_vnni),
            (Dot::Avx2, avx2),
        ]
        .into_iter()
        .filter_map(|(dot, present)| present.then_some(dot))
    }

    /// Channels per 32-bit word.
    pub(super) fn group(self) -> usize {
        match self {
            Dot::Vnni | Dot::AvxVnni => 4,
            Dot::Avx2 => 2,
        }
    }

    /// `value(c)` for each channel `c` of a group as one word of
    /// [`lanes`].
    pub(super) fn word(self, value: impl Fn(usize) -> i32) -> u32 {
        match self {
            Dot::Vnni | Dot::AvxVnni => lanes::<4>(std::array::from_fn(value)),
            Dot::Avx2 => lanes::<2>(std::array::from_fn(value)),
        }
    }
}

/// `weights`, `[O, C, kh, kw]` with `taps` per output (int8, or 16-bit
/// for Winograd), as words of `g` channels' weights, `[O, C / g, kh, kw]`
/// to match [`by_words`], with zeros for the channels that pad `C` to a
/// multiple of `g`.
pub(super) fn by_groups(weights: &[i32], channels: usize, taps: usize, dot: Dot) -> Vec<u32> {
    let g = dot.group();
    let window = taps / channels;
    let padded = channels.next_multiple_of(g) * window;
    let mut ordered = vec![0; weights.len() / taps * padded];
    for (filter, out) in weights
        .chunks_exact(taps)
        .zip(ordered.chunks_exact_mut(padded))
    {
        for (c, kernel) in filter.chunks_exact(window).enumerate() {
            for (k, &w) in kernel.iter().enumerate() {
                out[(c / g * window + k) * g + c % g] = w;
            }
        }
    }
    let words = ordered.chunks_exact(g);
    words.map(|w| dot.word(|c| w[c])).collect()
}

/// `image`, `[C, H, W]` bytes with planes of `plane`, as `[ceil(C / G), H,
/// W]` words holding `G` channels' values each, XORed with `flip` (so that
/// int8 reads as unsigned), and `zero` for the channels past `C`.
#[inline(always)]
pub(super) fn by_words<const G: usize>(
    image: &[u8],
    plane: usize,
    flip: u8,
    zero: u8,
    out: &mut Vec<u32>,
) {
    out.clear();
    for group in image.chunks(G * plane) {
        if group.len() == G * plane {
            let planes: [&[u8]; G] = std::array::from_fn(|c| &group[c * plane..][..plane]);
            out.extend((0..plane).map(|p| lanes(planes.map(|values| (values[p] ^ flip) as i32))));
        } else {
            let value = |c: usize, p: usize| group.get(c * plane + p).map_or(zero, |&x| x ^ flip);
            out.extend((0..plane).map(|p| lanes::<G>(std::array::from_fn(|c| value(c, p) as i32))));
        }
    }
}

/// `G` values as one word of `G` lanes, the first in the lowest, each
/// lane holding the low `32 / G` bits of its value (a signed weight's two's
/// complement, or an unsigned byte).
#[inline(always)]
fn lanes<const G: usize>(values: [i32; G]) -> u32 {
    let bits = 32 / G;
    let mask = u32::MAX >> (32 - bits);
    (values.iter().enumerate()).fold(0, |word, (lane, &v)| {
        word | (v as u32 & mask) << (lane * bits)
    })
}
