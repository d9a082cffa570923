//! The client's address: the peer, or `X-Forwarded-For` behind trusted proxies.

use std::{
    fmt,
    net::{IpAddr, SocketAddr},
    str::FromStr,
};

use axum::extract::ConnectInfo;
use http::{Extensions, HeaderMap, header::HeaderName};
use ipnet::IpNet;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// A proxy network whose `X-Forwarded-For` is believed: `10.0.0.0/8`,
/// `192.168.1.10`, `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy(IpNet);

/// A [`TrustedProxy`] that did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidProxy(String);

impl fmt::Display for InvalidProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not an IP address or network such as 10.0.0.0/8",
            self.0
        )
    }
}

impl std::error::Error for InvalidProxy {}

impl FromStr for TrustedProxy {
    type Err = InvalidProxy;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        trimmed
            .parse::<IpNet>()
            .or_else(|_| trimmed.parse::<IpAddr>().map(IpNet::from))
            .map(|network| Self(network.trunc()))
            .map_err(|_| InvalidProxy(text.to_owned()))
    }
}

impl TrustedProxy {
    /// Whether `address` is in this network.
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&canonical(address))
    }
}

/// IPv4 peers of a dual-stack socket arrive as `::ffff:a.b.c.d`.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// The client of a request: the peer from axum's `ConnectInfo`, or, when the
/// peer is a trusted proxy, the rightmost `X-Forwarded-For` entry that is not.
pub(crate) fn client_ip(
    extensions: &Extensions,
    headers: &HeaderMap,
    trusted: &[TrustedProxy],
) -> Option<IpAddr> {
    let peer = canonical(extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip());
    let is_trusted = |address: IpAddr| trusted.iter().any(|proxy| proxy.contains(address));
    if trusted.is_empty() || !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    for value in headers.get_all(&X_FORWARDED_FOR).iter().rev() {
        let Ok(value) = value.to_str() else {
            return Some(client);
        };
        for entry in value.rsplit(',') {
            let Ok(address) = entry.trim().parse::<IpAddr>() else {
                // A hop we cannot read: stop at the last one we could.
                return Some(client);
            };
            client = canonical(address);
            if !is_trusted(client) {
                return Some(client);
            }
        }
    }
    Some(client)
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().filter_map(|text| text.parse().ok()).collect()
    }

    fn client(peer: &str, forwarded: &[&str], trusted: &[&str]) -> Option<String> {
        let mut extensions = Extensions::new();
        extensions.insert(ConnectInfo(peer.parse::<SocketAddr>().ok()?));
        let mut headers = HeaderMap::new();
        for value in forwarded {
            headers.append(&X_FORWARDED_FOR, HeaderValue::from_str(value).ok()?);
        }
        client_ip(&extensions, &headers, &proxies(trusted)).map(|ip| ip.to_string())
    }

    #[test]
    fn networks_parse_and_match() {
        let network: TrustedProxy = "10.0.0.0/8".parse().unwrap_or_else(|e| panic!("{e}"));
        assert!(network.contains("10.200.1.1".parse().unwrap_or(IpAddr::V4([0; 4].into()))));
        assert!(!network.contains("11.0.0.1".parse().unwrap_or(IpAddr::V4([0; 4].into()))));
        assert!(
            "::ffff:10.1.2.3"
                .parse()
                .is_ok_and(|address| network.contains(address))
        );
        assert!("fd00::/8".parse::<TrustedProxy>().is_ok());
        assert!("0.0.0.0/0".parse::<TrustedProxy>().is_ok());
        for bad in ["10.0.0.0/33", "host", "10.0.0.0/x", "::/129", ""] {
            assert!(bad.parse::<TrustedProxy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_for_only_from_trusted_peers() {
        // No trusted proxies: the header is ignored.
        assert_eq!(
            client("1.2.3.4:5", &["9.9.9.9"], &[]).as_deref(),
            Some("1.2.3.4")
        );
        // An untrusted peer cannot claim to be someone else.
        assert_eq!(
            client("1.2.3.4:5", &["9.9.9.9"], &["10.0.0.0/8"]).as_deref(),
            Some("1.2.3.4")
        );
        // Behind two trusted hops, the rightmost untrusted entry wins; the
        // client's own claim on the left is not believed.
        assert_eq!(
            client(
                "10.0.0.1:5",
                &["6.6.6.6, 7.7.7.7", "10.0.0.2"],
                &["10.0.0.0/8"]
            )
            .as_deref(),
            Some("7.7.7.7")
        );
        assert_eq!(
            client("10.0.0.1:5", &["junk, 10.0.0.3"], &["10.0.0.0/8"]).as_deref(),
            Some("10.0.0.3")
        );
        assert_eq!(
            client("10.0.0.1:5", &[], &["10.0.0.0/8"]).as_deref(),
            Some("10.0.0.1")
        );
        assert_eq!(
            client("[::ffff:1.2.3.4]:5", &[], &[]).as_deref(),
            Some("1.2.3.4")
        );
    }
}
