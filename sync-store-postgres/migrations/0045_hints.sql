-- Hints from webhooks: entities to fetch again, one row per entity however
-- many hints it got (`received`). `mark` orders them; it comes from the
-- single counter row, whose lock each hint holds until it commits.
CREATE TABLE hints (
    source      TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    entity      TEXT    NOT NULL,
    external_id TEXT    NOT NULL,
    mark        BIGINT  NOT NULL,
    received    BIGINT  NOT NULL DEFAULT 1,
    PRIMARY KEY (source, stream, entity, external_id)
);
CREATE INDEX hints_by_stream ON hints (source, stream, mark);
CREATE TABLE hint_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    mark BIGINT  NOT NULL
);
INSERT INTO hint_counter (id, mark) VALUES (1, 0);
