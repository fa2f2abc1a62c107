//! Where training runs, and on how many CPU threads.

use std::str::FromStr;

use tch::Device;

use crate::TrainError;

/// The `--device` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// The first GPU if libtorch sees one, else the CPU.
    Auto,
    Cpu,
    Cuda,
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<DeviceChoice, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda),
            _ => Err("expected auto, cpu or cuda".into()),
        }
    }
}

/// Resolves `choice` and sets libtorch's CPU threads: `threads`, or every
/// core the process may use.
pub fn select(choice: DeviceChoice, threads: Option<usize>) -> Result<Device, TrainError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.unwrap_or(cores);
    if threads == 0 {
        return Err(TrainError::Invalid("threads must be at least 1".into()));
    }
    flush_denormals();
    tch::set_num_threads(threads as i32);
    match choice {
        DeviceChoice::Auto => Ok(Device::cuda_if_available()),
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
        DeviceChoice::Cuda => Err(TrainError::Invalid(
            "--device cuda, but libtorch sees no CUDA device".into(),
        )),
    }
}

/// Sets the SSE flush-to-zero and denormals-are-zero flags of this thread,
/// which libtorch's worker threads inherit when they are spawned. A net
/// whose activations fade towards zero otherwise runs several times slower
/// on subnormal arithmetic; training loses nothing from the lost precision.
fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    {
        /// MXCSR bits: FTZ (15) and DAZ (6).
        const FTZ_DAZ: u32 = 0x8040;
        let mut csr: u32 = 0;
        // SAFETY: reads and writes this thread's MXCSR through a valid pointer;
        // the bits set change only how subnormal floats round.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack));
        }
    }
}
