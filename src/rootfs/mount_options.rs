//! The `options` of a mount entry (config.md "Linux mount options"), sorted into what mount(2)
//! takes as flags, what goes to mount_setattr(2), the propagation changes, and the
//! filesystem-specific rest that becomes mount(2)'s data string.

use libc::{
    c_ulong, MS_BIND, MS_DIRSYNC, MS_I_VERSION, MS_LAZYTIME, MS_MANDLOCK, MS_NOATIME, MS_NODEV,
    MS_NODIRATIME, MS_NOEXEC, MS_NOSUID, MS_NOSYMFOLLOW, MS_PRIVATE, MS_RDONLY, MS_REC,
    MS_RELATIME, MS_REMOUNT, MS_SHARED, MS_SILENT, MS_SLAVE, MS_STRICTATIME, MS_SYNCHRONOUS,
    MS_UNBINDABLE,
};

use super::sys::{
    MountAttr, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
};

/// A change of per-mount attributes, as mount_setattr(2) applies it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AttrChange {
    pub set: u64,
    pub clear: u64,
    /// The atime mode to switch to (one of MOUNT_ATTR_{RELATIME,NOATIME,STRICTATIME}).
    pub atime: Option<u64>,
}

impl AttrChange {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0 && self.atime.is_none()
    }

    pub fn to_mount_attr(self) -> MountAttr {
        let mut attr = MountAttr {
            attr_set: self.set,
            attr_clr: self.clear,
            ..MountAttr::default()
        };
        if let Some(mode) = self.atime {
            // The kernel wants the whole atime field cleared to set one mode of it.
            attr.attr_clr |= MOUNT_ATTR_ATIME_MASK;
            attr.attr_set |= mode;
        }
        attr
    }

    fn turn_on(&mut self, attr: u64) {
        self.set |= attr;
        self.clear &= !attr;
    }

    fn turn_off(&mut self, attr: u64) {
        self.clear |= attr;
        self.set &= !attr;
    }
}

/// A mount entry's options, parsed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// MS_* flags for mount(2), including MS_BIND / MS_REC for "bind" / "rbind".
    pub flags: c_ulong,
    /// MS_* flags an option explicitly turned off ("rw", "suid", "dev", "exec", ...).
    pub cleared: c_ulong,
    /// The atime mode the last atime-family option asked for, for bind mounts.
    pub atime: Option<u64>,
    /// Propagation changes in the order given, each an MS_* type possibly with MS_REC.
    pub propagation: Vec<c_ulong>,
    /// The recursive options ("rro", "rnosuid", ...), for mount_setattr(AT_RECURSIVE).
    pub recursive: AttrChange,
    /// "idmap" or "ridmap" if present (bind mounts only: src/idmap.rs).
    pub idmap: Option<&'static str>,
    pub tmpcopyup: bool,
    /// Filesystem-specific options, comma-joined, for mount(2)'s data argument.
    pub data: String,
}

/// What one option string means.
enum Meaning {
    Set(c_ulong),
    Clear(c_ulong),
    Propagation(c_ulong),
    RecursiveOn(u64),
    RecursiveOff(u64),
    RecursiveAtime(u64),
    Idmap(&'static str),
    TmpCopyUp,
    Nothing,
}

/// Whether berth recognizes and implements `option` (for `features`).
/// idmap/ridmap are implemented for bind mounts (src/idmap.rs).
pub fn supported(option: &str) -> bool {
    meaning(option).is_some()
}

fn meaning(option: &str) -> Option<Meaning> {
    use Meaning::*;
    Some(match option {
        "defaults" => Nothing,
        "ro" => Set(MS_RDONLY),
        "rw" => Clear(MS_RDONLY),
        "nosuid" => Set(MS_NOSUID),
        "suid" => Clear(MS_NOSUID),
        "nodev" => Set(MS_NODEV),
        "dev" => Clear(MS_NODEV),
        "noexec" => Set(MS_NOEXEC),
        "exec" => Clear(MS_NOEXEC),
        "sync" => Set(MS_SYNCHRONOUS),
        "async" => Clear(MS_SYNCHRONOUS),
        "dirsync" => Set(MS_DIRSYNC),
        "remount" => Set(MS_REMOUNT),
        "mand" => Set(MS_MANDLOCK),
        "nomand" => Clear(MS_MANDLOCK),
        "noatime" => Set(MS_NOATIME),
        "atime" => Clear(MS_NOATIME),
        "nodiratime" => Set(MS_NODIRATIME),
        "diratime" => Clear(MS_NODIRATIME),
        "relatime" => Set(MS_RELATIME),
        "norelatime" => Clear(MS_RELATIME),
        "strictatime" => Set(MS_STRICTATIME),
        "nostrictatime" => Clear(MS_STRICTATIME),
        "lazytime" => Set(MS_LAZYTIME),
        "nolazytime" => Clear(MS_LAZYTIME),
        "iversion" => Set(MS_I_VERSION),
        "noiversion" => Clear(MS_I_VERSION),
        "silent" => Set(MS_SILENT),
        "loud" => Clear(MS_SILENT),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "bind" => Set(MS_BIND),
        "rbind" => Set(MS_BIND | MS_REC),
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
        | "runbindable" => Propagation(propagation_flags(option)?),
        "rro" => RecursiveOn(MOUNT_ATTR_RDONLY),
        "rrw" => RecursiveOff(MOUNT_ATTR_RDONLY),
        "rnosuid" => RecursiveOn(MOUNT_ATTR_NOSUID),
        "rsuid" => RecursiveOff(MOUNT_ATTR_NOSUID),
        "rnodev" => RecursiveOn(MOUNT_ATTR_NODEV),
        "rdev" => RecursiveOff(MOUNT_ATTR_NODEV),
        "rnoexec" => RecursiveOn(MOUNT_ATTR_NOEXEC),
        "rexec" => RecursiveOff(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => RecursiveOn(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => RecursiveOff(MOUNT_ATTR_NODIRATIME),
        "rnosymfollow" => RecursiveOn(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => RecursiveOff(MOUNT_ATTR_NOSYMFOLLOW),
        "rnoatime" => RecursiveAtime(MOUNT_ATTR_NOATIME),
        "rstrictatime" => RecursiveAtime(MOUNT_ATTR_STRICTATIME),
        // Turning noatime or strictatime off, or asking for relatime, all land on the kernel's
        // default mode, relatime (the same as mount(2) does without MS_STRICTATIME).
        "rrelatime" | "ratime" | "rnostrictatime" | "rnorelatime" => {
            RecursiveAtime(MOUNT_ATTR_RELATIME)
        }
        "idmap" => Idmap("idmap"),
        "ridmap" => Idmap("ridmap"),
        "tmpcopyup" => TmpCopyUp,
        _ => return None,
    })
}

/// The MS_* propagation type of "private", "rshared", ... (None for anything else).
pub fn propagation_flags(name: &str) -> Option<c_ulong> {
    let (recursive, kind) = match name.strip_prefix('r') {
        Some(rest) => (MS_REC, rest),
        None => (0, name),
    };
    let kind = match kind {
        "private" => MS_PRIVATE,
        "shared" => MS_SHARED,
        "slave" => MS_SLAVE,
        "unbindable" => MS_UNBINDABLE,
        _ => return None,
    };
    Some(kind | recursive)
}

impl MountOptions {
    pub fn parse(options: &[String]) -> Self {
        let mut o = MountOptions::default();
        for option in options {
            let option = option.as_str();
            match meaning(option) {
                Some(Meaning::Set(f)) => {
                    o.flags |= f;
                    o.cleared &= !f;
                    o.note_atime(option);
                }
                Some(Meaning::Clear(f)) => {
                    o.flags &= !f;
                    o.cleared |= f;
                    o.note_atime(option);
                }
                Some(Meaning::Propagation(p)) => o.propagation.push(p),
                Some(Meaning::RecursiveOn(a)) => o.recursive.turn_on(a),
                Some(Meaning::RecursiveOff(a)) => o.recursive.turn_off(a),
                Some(Meaning::RecursiveAtime(mode)) => o.recursive.atime = Some(mode),
                Some(Meaning::Idmap(name)) => o.idmap = Some(name),
                Some(Meaning::TmpCopyUp) => o.tmpcopyup = true,
                Some(Meaning::Nothing) => {}
                None if option.is_empty() => {}
                None => {
                    if !o.data.is_empty() {
                        o.data.push(',');
                    }
                    o.data.push_str(option);
                }
            }
        }
        o
    }

    fn note_atime(&mut self, option: &str) {
        self.atime = match option {
            "noatime" => Some(MOUNT_ATTR_NOATIME),
            "strictatime" => Some(MOUNT_ATTR_STRICTATIME),
            "relatime" | "atime" | "norelatime" | "nostrictatime" => Some(MOUNT_ATTR_RELATIME),
            _ => return,
        };
    }

    pub fn is_bind(&self) -> bool {
        self.flags & MS_BIND != 0
    }

    pub fn is_recursive_bind(&self) -> bool {
        self.flags & (MS_BIND | MS_REC) == MS_BIND | MS_REC
    }

    pub fn read_only(&self) -> bool {
        self.flags & MS_RDONLY != 0
    }

    /// The flags for mount(2) of a new filesystem (no bind, no propagation bits).
    pub fn fs_flags(&self) -> c_ulong {
        self.flags & !(MS_BIND | MS_REC)
    }

    /// The per-mount attributes of a bind mount's top mount, the way a remount of the bind would
    /// set them; attributes no option names are kept from the source (mount_setattr changes only
    /// what it is told to, so flags the kernel locked on the source stay as they are).
    pub fn bind_attrs(&self) -> AttrChange {
        const PER_MOUNT: [(c_ulong, u64); 6] = [
            (MS_RDONLY, MOUNT_ATTR_RDONLY),
            (MS_NOSUID, MOUNT_ATTR_NOSUID),
            (MS_NODEV, MOUNT_ATTR_NODEV),
            (MS_NOEXEC, MOUNT_ATTR_NOEXEC),
            (MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
            (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
        ];
        let mut change = AttrChange {
            atime: self.atime,
            ..AttrChange::default()
        };
        for (ms, attr) in PER_MOUNT {
            if self.flags & ms != 0 {
                change.set |= attr;
            } else if self.cleared & ms != 0 {
                change.clear |= attr;
            }
        }
        change
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(opts: &[&str]) -> MountOptions {
        MountOptions::parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_and_data_are_split() {
        let o = parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(o.flags, MS_NOSUID | MS_STRICTATIME);
        assert_eq!(o.data, "mode=755,size=65536k");
        assert!(!o.is_bind());
    }

    #[test]
    fn later_options_win() {
        let o = parse(&["ro", "rw", "nodev", "dev", "noexec"]);
        assert_eq!(o.flags, MS_NOEXEC);
        assert_eq!(o.cleared, MS_RDONLY | MS_NODEV);
        let attrs = o.bind_attrs();
        assert_eq!(attrs.set, MOUNT_ATTR_NOEXEC);
        assert_eq!(attrs.clear, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV);
    }

    #[test]
    fn binds_and_propagation() {
        let o = parse(&["rbind", "rprivate", "slave", "ro"]);
        assert!(o.is_bind() && o.is_recursive_bind() && o.read_only());
        assert_eq!(o.propagation, vec![MS_PRIVATE | MS_REC, MS_SLAVE]);
        assert_eq!(o.fs_flags(), MS_RDONLY);
        let o = parse(&["bind", "runbindable"]);
        assert!(o.is_bind() && !o.is_recursive_bind());
        assert_eq!(o.propagation, vec![MS_UNBINDABLE | MS_REC]);
    }

    #[test]
    fn recursive_attributes() {
        let o = parse(&["rbind", "rro", "rnosuid", "rnoatime", "rexec"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID);
        assert_eq!(o.recursive.clear, MOUNT_ATTR_NOEXEC);
        let attr = o.recursive.to_mount_attr();
        assert_eq!(
            attr.attr_set,
            MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOATIME
        );
        assert_eq!(attr.attr_clr, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_ATIME_MASK);
        assert_eq!(o.data, "");
    }

    #[test]
    fn atime_for_binds() {
        assert_eq!(
            parse(&["bind", "noatime"]).bind_attrs().atime,
            Some(MOUNT_ATTR_NOATIME)
        );
        assert_eq!(
            parse(&["bind", "relatime"]).bind_attrs().atime,
            Some(MOUNT_ATTR_RELATIME)
        );
        assert_eq!(parse(&["bind"]).bind_attrs(), AttrChange::default());
    }

    #[test]
    fn idmap_and_tmpcopyup_are_flagged() {
        assert_eq!(parse(&["rbind", "ridmap"]).idmap, Some("ridmap"));
        assert!(parse(&["tmpcopyup"]).tmpcopyup);
    }

    #[test]
    fn propagation_names() {
        assert_eq!(propagation_flags("rslave"), Some(MS_SLAVE | MS_REC));
        assert_eq!(propagation_flags("shared"), Some(MS_SHARED));
        assert_eq!(propagation_flags("rbind"), None);
        assert_eq!(propagation_flags("r"), None);
        assert_eq!(propagation_flags("bogus"), None);
    }
}
