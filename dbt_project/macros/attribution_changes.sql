{#- Which keys changed profile since an attributed model last ran (docs/performance.md,
    "Incremental event models").

    int_identity__lookup_keys stamps every key whose profile changed (new, moved to another
    profile, gone or become ambiguous: profile_id null) with changed_at. Each incremental
    attributed model remembers, in a one-row table <model>__keys_seen written by its
    post-hook in the same transaction, the newest changed_at it has seen; its next run
    re-attributes only the loaded rows whose keys changed after that. Without that table
    (a model built before it existed, or dropped by hand) a run re-attributes every row. -#}

{#- The changed_at of the keys a lookup_keys run writes (or another run stamp, `column`):
    the dbt run's start, kept after the newest stamp already stored (`stored`: the existing
    relation) so a clock set back cannot hide a change from a model that has seen a later
    stamp. -#}
{% macro key_change_stamp(stored=none, column='changed_at') -%}
  {%- set started = "cast('" ~ run_started_at.strftime('%Y-%m-%d %H:%M:%S.%f') ~ "' as timestamp)" -%}
  {%- if stored is none -%}
    {{ started }}
  {%- else -%}
    greatest({{ started }}, (select max({{ column }}) + interval '1 microsecond' from {{ stored }}))
  {%- endif -%}
{%- endmacro %}


{#- The one-row table remembering the newest key change `relation` has seen. -#}
{% macro keys_seen_relation(relation=this) -%}
  {{ return(api.Relation.create(database=relation.database, schema=relation.schema,
                                identifier=relation.identifier ~ '__keys_seen', type='table')) }}
{%- endmacro %}


{#- SQL giving the newest key change this model has seen, or none when it has no record
    (then every loaded row is attributed again). -#}
{% macro keys_seen_through() -%}
  {%- if not execute -%}
    {{ return(none) }}
  {%- endif -%}
  {%- set target = keys_seen_relation() -%}
  {%- set found = adapter.get_relation(database=target.database, schema=target.schema, identifier=target.identifier) -%}
  {%- if found is none -%}
    {{ return(none) }}
  {%- endif -%}
  {#- null when lookup_keys was empty: every key is then new -#}
  {{ return("(select coalesce(max(keys_seen_through), cast('1900-01-01' as timestamp)) from " ~ target ~ ")") }}
{%- endmacro %}


{#- Post-hook of an attributed model: remember the newest key change it has now seen. -#}
{% macro remember_keys_seen(lookup_keys) -%}
  create or replace table {{ keys_seen_relation() }} as
  select max(changed_at) as keys_seen_through from {{ lookup_keys }}
{%- endmacro %}
