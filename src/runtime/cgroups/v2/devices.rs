//! v2 device access control: cgroup v2 has no `devices` files; access is
//! decided by an eBPF program of type `BPF_PROG_TYPE_CGROUP_DEVICE`
//! attached to the cgroup, which reads `struct bpf_cgroup_dev_ctx`
//! (`include/uapi/linux/bpf.h`). The program is generated from Docker's
//! default allow-list: each rule is a block of compares that returns 1
//! (allow) on a match; falling off the end returns 0 (deny). No crate builds
//! cgroup device programs, so the few instructions are encoded here.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use crate::runtime::error::{Result, RuntimeError};

/// Device type in a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    /// Any type.
    All,
    /// Block device (`BPF_DEVCG_DEV_BLOCK`).
    Block,
    /// Character device (`BPF_DEVCG_DEV_CHAR`).
    Char,
}

/// One allow rule; `None` major/minor mean any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// Type.
    pub typ: DevType,
    /// Major number.
    pub major: Option<u32>,
    /// Minor number.
    pub minor: Option<u32>,
    /// Allowed access bits: 1 mknod, 2 read, 4 write (`BPF_DEVCG_ACC_*`).
    pub access: u32,
}

const MKNOD: u32 = 1;
const RWM: u32 = 7;

const fn chr(major: u32, minor: Option<u32>) -> DeviceRule {
    DeviceRule {
        typ: DevType::Char,
        major: Some(major),
        minor,
        access: RWM,
    }
}

/// Docker's defaults: mknod of anything, and the standard character devices.
pub const DEFAULT_RULES: &[DeviceRule] = &[
    DeviceRule {
        typ: DevType::Char,
        major: None,
        minor: None,
        access: MKNOD,
    },
    DeviceRule {
        typ: DevType::Block,
        major: None,
        minor: None,
        access: MKNOD,
    },
    chr(1, Some(3)),
    chr(1, Some(5)),
    chr(1, Some(7)),
    chr(1, Some(8)),
    chr(1, Some(9)),
    chr(5, Some(0)),
    chr(5, Some(1)),
    chr(5, Some(2)),
    chr(136, None),
    chr(10, Some(200)),
];

/// One eBPF instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

// Opcodes (include/uapi/linux/bpf.h, bpf_common.h).
const LDX_MEM_W: u8 = 0x61;
const MOV64_REG: u8 = 0xbf;
const MOV64_IMM: u8 = 0xb7;
const AND64_IMM: u8 = 0x57;
const RSH64_IMM: u8 = 0x77;
const JNE_IMM: u8 = 0x55;
const EXIT: u8 = 0x95;

/// The instructions of one rule; a mismatch jumps to the next rule's start.
fn rule_block(r: &DeviceRule) -> Vec<Insn> {
    // Compares first, each jumping over the rest of the block on mismatch.
    let mut cmps: Vec<(u8, i32)> = Vec::new();
    match r.typ {
        DevType::Block => cmps.push((3, 1)),
        DevType::Char => cmps.push((3, 2)),
        DevType::All => {}
    }
    if let Some(m) = r.major {
        cmps.push((5, m as i32));
    }
    if let Some(m) = r.minor {
        cmps.push((6, m as i32));
    }
    // Tail: r7 = access & ~allowed; if r7 != 0 skip; r0 = 1; exit.
    let tail_len = 5;
    let mut out = Vec::new();
    for (i, (reg, val)) in cmps.iter().enumerate() {
        let remaining = (cmps.len() - i - 1) as i16 + tail_len;
        out.push(insn(JNE_IMM, *reg, 0, remaining, *val));
    }
    out.push(insn(MOV64_REG, 7, 4, 0, 0));
    out.push(insn(AND64_IMM, 7, 0, 0, !(r.access as i32)));
    out.push(insn(JNE_IMM, 7, 0, 2, 0));
    out.push(insn(MOV64_IMM, 0, 0, 0, 1));
    out.push(insn(EXIT, 0, 0, 0, 0));
    out
}

/// The whole program for `rules`.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0), // r2 = ctx->access_type
        insn(MOV64_REG, 3, 2, 0, 0),
        insn(AND64_IMM, 3, 0, 0, 0xffff), // r3 = device type
        insn(MOV64_REG, 4, 2, 0, 0),
        insn(RSH64_IMM, 4, 0, 0, 16), // r4 = access
        insn(LDX_MEM_W, 5, 1, 4, 0),  // r5 = ctx->major
        insn(LDX_MEM_W, 6, 1, 8, 0),  // r6 = ctx->minor
    ];
    for r in rules {
        p.extend(rule_block(r));
    }
    p.push(insn(MOV64_IMM, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;

/// The leading fields of `union bpf_attr` for BPF_PROG_LOAD; the rest stays zero.
#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    pad: [u64; 12],
}

/// The leading fields of `union bpf_attr` for BPF_PROG_ATTACH.
#[repr(C)]
struct ProgAttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    pad: [u64; 12],
}

fn bpf<T>(cmd: libc::c_long, attr: &T) -> std::result::Result<i64, nix::Error> {
    // SAFETY: attr is a valid, fully initialized bpf_attr prefix followed by
    // zeros, and its size is passed along.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *const T,
            std::mem::size_of::<T>(),
        )
    };
    if r < 0 {
        Err(nix::Error::last())
    } else {
        Ok(r)
    }
}

fn load(insns: &[Insn]) -> Result<OwnedFd> {
    let license = c"Apache-2.0";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        log_level: 0,
        log_size: 0,
        log_buf: 0,
        kern_version: 0,
        prog_flags: 0,
        pad: [0; 12],
    };
    let fd =
        bpf(BPF_PROG_LOAD, &attr).map_err(|e| RuntimeError::sys("load device eBPF program", e))?;
    // SAFETY: BPF_PROG_LOAD returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Denies every device access in cgroup `dir` except `rules`.
pub fn apply_rules(dir: &Path, rules: &[DeviceRule]) -> Result<()> {
    let prog = load(&program(rules))?;
    let cg = std::fs::File::open(dir).map_err(|e| RuntimeError::io("open", dir, e))?;
    let attr = ProgAttachAttr {
        target_fd: cg.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: 0,
        pad: [0; 12],
    };
    bpf(BPF_PROG_ATTACH, &attr)
        .map_err(|e| RuntimeError::sys(format!("attach device program to {}", dir.display()), e))?;
    Ok(())
}

/// Docker's default device rules on cgroup `dir`.
pub fn apply_default_rules(dir: &Path) -> Result<()> {
    apply_rules(dir, DEFAULT_RULES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_shape() {
        let one = [chr(1, Some(3))];
        let p = program(&one);
        // 7 loads, 3 compares + 5 tail, 2 final.
        assert_eq!(p.len(), 7 + 8 + 2);
        // The type compare skips the major and minor compares and the tail.
        assert_eq!(p[7], insn(JNE_IMM, 3, 0, 7, 2));
        assert_eq!(p[9], insn(JNE_IMM, 6, 0, 5, 3));
        assert_eq!(p.last().copied(), Some(insn(EXIT, 0, 0, 0, 0)));
        let any = program(&[DeviceRule {
            typ: DevType::All,
            major: None,
            minor: None,
            access: MKNOD,
        }]);
        assert_eq!(any.len(), 7 + 5 + 2);
    }
}
