//! net.ipv4.conf.all.src_valid_mark, which a default route through fwmark rules needs (so
//! replies to the tunnel's own packets pass reverse-path filtering), and `up`'s undo restores.

pub const SRC_VALID_MARK: &str = "/proc/sys/net/ipv4/conf/all/src_valid_mark";

pub fn write_src_valid_mark(value: &str) -> std::io::Result<()> {
    std::fs::write(SRC_VALID_MARK, format!("{value}\n"))
}
