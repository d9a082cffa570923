//! The offline VK stand-in: deterministic posts and comments for any group.

/// A wall post, as `wall.get` gives it (the fields the parser keeps).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Post {
    pub(crate) id: u64,
    pub(crate) text: String,
    pub(crate) comments: u32,
}

/// A comment, as `wall.getComments` gives it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Comment {
    pub(crate) id: u64,
    pub(crate) post_id: u64,
    pub(crate) from_id: i64,
    pub(crate) date: u64,
    pub(crate) text: String,
}

const WORDS: [&str; 16] = [
    "great",
    "post",
    "thanks",
    "agree",
    "interesting",
    "why",
    "not",
    "sure",
    "love",
    "this",
    "news",
    "again",
    "finally",
    "wow",
    "really",
    "cool",
];

/// A small, fast, deterministic mixer (SplitMix64).
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn group_seed(group: &str) -> u64 {
    group.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn sentence(seed: u64, words: usize) -> String {
    (0..words)
        .map(|i| WORDS[(mix(seed.wrapping_add(i as u64)) % WORDS.len() as u64) as usize])
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `count` newest posts of `group`.
pub(crate) fn posts(group: &str, count: u32) -> Vec<Post> {
    let seed = group_seed(group);
    (0..u64::from(count))
        .map(|n| {
            let id = 1000 - n;
            let post_seed = mix(seed ^ id);
            Post {
                id,
                text: sentence(post_seed, 8),
                comments: (post_seed % 150) as u32,
            }
        })
        .collect()
}

/// Up to `count` comments of `post`.
pub(crate) fn comments(group: &str, post: &Post, count: u32) -> Vec<Comment> {
    let seed = group_seed(group);
    (0..u64::from(count.min(post.comments)))
        .map(|n| {
            let comment_seed = mix(seed ^ (post.id << 20) ^ n);
            Comment {
                id: post.id * 10_000 + n + 1,
                post_id: post.id,
                from_id: (comment_seed % 900_000_000) as i64 + 1,
                date: 1_700_000_000 + post.id * 3600 + n * 60,
                text: sentence(comment_seed, 3 + (comment_seed % 6) as usize),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic() {
        let first = posts("durov", 3);
        let again = posts("durov", 3);
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].text, again[0].text);
        assert_eq!(first[0].id, 1000);
        let comments_a = comments("durov", &first[0], 5);
        let comments_b = comments("durov", &first[0], 5);
        assert_eq!(comments_a.len(), 5.min(first[0].comments as usize));
        assert_eq!(
            comments_a.iter().map(|c| &c.text).collect::<Vec<_>>(),
            comments_b.iter().map(|c| &c.text).collect::<Vec<_>>()
        );
        assert_ne!(posts("other", 1)[0].text, first[0].text);
    }
}
