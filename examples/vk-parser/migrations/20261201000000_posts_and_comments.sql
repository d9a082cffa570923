-- Posts and comments, one row per VK id within a group. `IF NOT EXISTS`
-- adopts databases created before the schema was a migration.
CREATE TABLE IF NOT EXISTS posts (
    group_id TEXT NOT NULL,
    post_id BIGINT NOT NULL,
    text TEXT NOT NULL,
    comments BIGINT NOT NULL,
    PRIMARY KEY (group_id, post_id)
);

CREATE TABLE IF NOT EXISTS comments (
    group_id TEXT NOT NULL,
    post_id BIGINT NOT NULL,
    comment_id BIGINT NOT NULL,
    from_id BIGINT NOT NULL,
    date BIGINT NOT NULL,
    text TEXT NOT NULL,
    PRIMARY KEY (group_id, post_id, comment_id)
);
