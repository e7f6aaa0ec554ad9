-- One row per segment with the description, owner and priority from its yml: what a
-- sync shows as the audience's description, and a segment list that includes empty
-- segments. Read from the dbt graph, so it needs no ref to the seg_ models.
{{ outflow_segment_definitions() }}
