//! Decoded tensors: dtype, shape, raw little-endian bytes, and exact float conversions.

use crate::sha256::sha256_hex;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DType {
    F32,
    F64,
    F16,
    BF16,
}

impl DType {
    /// safetensors dtype codes (the only ones weightinit writes).
    pub fn from_safetensors(code: &str) -> Option<DType> {
        match code {
            "F32" => Some(DType::F32),
            "F64" => Some(DType::F64),
            "F16" => Some(DType::F16),
            "BF16" => Some(DType::BF16),
            _ => None,
        }
    }
    /// The request's dtype names (`float32`, ...), as the JSON report spells them.
    pub fn from_request_name(name: &str) -> Option<DType> {
        match name {
            "float32" => Some(DType::F32),
            "float64" => Some(DType::F64),
            "float16" => Some(DType::F16),
            "bfloat16" => Some(DType::BF16),
            _ => None,
        }
    }
    pub fn code(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
        }
    }
    pub fn itemsize(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F64 => 8,
            DType::F16 | DType::BF16 => 2,
        }
    }
}

/// IEEE half -> f32, exactly (every half is a float32).
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h as u32) & 0x8000) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let frac = (h & 0x3ff) as u32;
    if exp == 0 {
        // zero or subnormal: frac * 2^-24, exact in f32
        let magnitude = frac as f32 * f32::from_bits(0x3380_0000); // 2^-24
        return f32::from_bits(magnitude.to_bits() | sign);
    }
    if exp == 31 {
        return f32::from_bits(sign | 0x7f80_0000 | (frac << 13));
    }
    f32::from_bits(sign | ((exp + 112) << 23) | (frac << 13))
}

/// bfloat16 bits -> f32: the upper half of a float32.
pub fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

pub struct Tensor {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<u64>,
    pub data: Vec<u8>,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.itemsize()
    }

    /// The stored element `i` as an unsigned integer (its bit pattern).
    pub fn bits(&self, i: usize) -> u64 {
        let n = self.dtype.itemsize();
        let mut b = [0u8; 8];
        b[..n].copy_from_slice(&self.data[i * n..(i + 1) * n]);
        u64::from_le_bytes(b)
    }

    /// Element `i` as f64 (exact: every dtype here widens to f64 without rounding).
    pub fn value(&self, i: usize) -> f64 {
        let bits = self.bits(i);
        match self.dtype {
            DType::F64 => f64::from_bits(bits),
            DType::F32 => f32::from_bits(bits as u32) as f64,
            DType::F16 => f16_to_f32(bits as u16) as f64,
            DType::BF16 => bf16_to_f32(bits as u16) as f64,
        }
    }

    /// Element `i` as the shortest text that reads back to the same value in its decoded
    /// precision (f64 for F64, f32 otherwise).
    pub fn display(&self, i: usize) -> String {
        let v = self.value(i);
        let small = v != 0.0 && (v.abs() < 1e-4 || v.abs() >= 1e7);
        match (self.dtype, small) {
            (DType::F64, false) => format!("{}", v),
            (DType::F64, true) => format!("{:e}", v),
            (_, false) => format!("{}", v as f32),
            (_, true) => format!("{:e}", v as f32),
        }
    }

    pub fn sha256(&self) -> String {
        sha256_hex(&self.data)
    }

    pub fn shape_text(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        format!("[{}]", dims.join(", "))
    }
}

/// Elements of a shape, or None on overflow.
pub fn element_count(shape: &[u64]) -> Option<u64> {
    shape.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_conversions_are_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24)); // smallest subnormal
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24)); // largest subnormal
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14)); // smallest normal
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000); // -0 keeps its sign
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0x2e66), 0.099975586); // nearest half to 0.1
    }

    #[test]
    fn bfloat16_is_the_upper_half() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xbfc0), -1.5);
        assert_eq!(bf16_to_f32(0x0001).to_bits(), 0x0001_0000);
    }

    #[test]
    fn element_count_checks_overflow() {
        assert_eq!(element_count(&[]), Some(1));
        assert_eq!(element_count(&[3, 0, 5]), Some(0));
        assert_eq!(element_count(&[u64::MAX, 2]), None);
    }
}
