//! Switching to an unprivileged user while keeping a chosen few capabilities.

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid, User};
use std::io;

/// The user the daemon runs as once confined.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Looks `name` up in the user database (NSS: /etc/passwd and friends). Fails when there is
/// no such user, or when the user is root (running "confined" as root would confine
/// nothing).
pub fn lookup_user(name: &str) -> io::Result<Identity> {
    let user = User::from_name(name)
        .map_err(|e| io::Error::other(format!("cannot look up user {name:?}: {e}")))?
        .ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no user named {name:?}"))
        })?;
    if user.uid.is_root() || user.gid.as_raw() == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("user {name:?} has uid or gid 0: that is not an unprivileged user"),
        ));
    }
    Ok(Identity {
        name: name.to_string(),
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

/// Threads of this process (from /proc/self/task).
pub fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

fn caps_err(what: &str) -> impl Fn(caps::errors::CapsError) -> io::Error + '_ {
    move |e| io::Error::other(format!("{what}: {e}"))
}

/// Becomes `who`, keeping exactly `keep` (permitted = effective = `keep`, inheritable and
/// ambient empty, bounding set = `keep`), and sets no_new_privs.
///
/// Must run while the process has one thread: capabilities are per thread, and a thread
/// that already exists would keep root's. Refuses otherwise.
pub fn drop_privileges(who: &Identity, keep: &[Capability]) -> io::Result<()> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!(
            "{threads} threads are running; privileges can only be dropped before the first \
             thread starts"
        )));
    }
    let keep: CapsHashSet = keep.iter().copied().collect();
    // The bounding set first: dropping from it needs CAP_SETPCAP, which goes next.
    for cap in caps::runtime::thread_all_supported() {
        if !keep.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(caps_err("bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Ambient).map_err(caps_err("ambient set"))?;
    caps::clear(None, CapSet::Inheritable).map_err(caps_err("inheritable set"))?;
    // Without KEEPCAPS, leaving uid 0 empties the permitted set; with it only the
    // effective set is emptied, and the kept ones are raised again below.
    nix::sys::prctl::set_keepcaps(true)
        .map_err(|e| io::Error::other(format!("PR_SET_KEEPCAPS: {e}")))?;
    let (uid, gid) = (Uid::from_raw(who.uid), Gid::from_raw(who.gid));
    setgroups(&[]).map_err(|e| io::Error::other(format!("setgroups: {e}")))?;
    setresgid(gid, gid, gid).map_err(|e| io::Error::other(format!("setresgid: {e}")))?;
    setresuid(uid, uid, uid).map_err(|e| io::Error::other(format!("setresuid: {e}")))?;
    nix::sys::prctl::set_keepcaps(false)
        .map_err(|e| io::Error::other(format!("PR_SET_KEEPCAPS: {e}")))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(caps_err("permitted set"))?;
    caps::set(None, CapSet::Effective, &keep).map_err(caps_err("effective set"))?;
    nix::sys::prctl::set_no_new_privs()
        .map_err(|e| io::Error::other(format!("PR_SET_NO_NEW_PRIVS: {e}")))?;
    // Read it all back: a kernel or library that silently did less must not leave us
    // believing we are confined.
    let check = |set: CapSet| caps::read(None, set).map_err(caps_err("reading capabilities"));
    if check(CapSet::Permitted)? != keep
        || check(CapSet::Effective)? != keep
        || check(CapSet::Bounding)? != keep
        || !check(CapSet::Inheritable)?.is_empty()
        || !check(CapSet::Ambient)?.is_empty()
    {
        return Err(io::Error::other(
            "capability sets differ from the ones asked for",
        ));
    }
    if Uid::current() != uid
        || Uid::effective() != uid
        || Gid::current() != gid
        || Gid::effective() != gid
        || Uid::current().is_root()
    {
        return Err(io::Error::other("the user switch did not take"));
    }
    Ok(())
}
