"""The metered tunnel's pure protocol code: SOCKS5 parsing, FlowNet frames and metering (no I/O)."""
