//! An IP address as text, without `core::fmt`.

use std::{fmt::Write as _, net::IpAddr};

use arrayvec::ArrayString;

/// The longest text of an address: IPv6 with an embedded IPv4 address.
pub const MAX_ADDRESS_TEXT: usize = 45;

/// `address` as text, as its `Display` writes it. IPv4, what nearly every
/// request has, is written with `itoa`, not through `core::fmt`, which cost
/// about 2% of a request's CPU in the comparison's profile. The request log
/// (`client_ip`) and the server span (`client.address`) both write it.
pub fn address_text(address: IpAddr) -> ArrayString<MAX_ADDRESS_TEXT> {
    let mut text = ArrayString::new();
    match address {
        IpAddr::V4(v4) => {
            let mut digits = itoa::Buffer::new();
            for (index, octet) in v4.octets().into_iter().enumerate() {
                if index > 0 {
                    text.push('.');
                }
                text.push_str(digits.format(octet));
            }
        }
        // At most `MAX_ADDRESS_TEXT` characters: it fits.
        IpAddr::V6(v6) => {
            let _ = write!(text, "{v6}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_address_text_is_what_display_writes(v4 in proptest::prelude::any::<[u8; 4]>(), v6 in proptest::prelude::any::<u128>()) {
            for address in [IpAddr::from(v4), IpAddr::from(std::net::Ipv6Addr::from(v6))] {
                let text = address_text(address);
                proptest::prop_assert_eq!(text.as_str(), address.to_string());
            }
        }
    }

    #[test]
    fn address_text_is_what_display_writes() {
        for address in [
            "0.0.0.0",
            "10.0.0.7",
            "192.168.100.255",
            "255.255.255.255",
            "::1",
            "2001:db8::8a2e:370:7334",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            "::ffff:10.0.0.7",
            "64:ff9b::255.255.255.255",
        ] {
            let address: IpAddr = address.parse().unwrap_or_else(|_| panic!("{address}"));
            assert_eq!(address_text(address).as_str(), address.to_string());
        }
    }
}
