{#- Hash-gated incremental models (docs/performance.md, "Incremental contacts and profile
    attributes"): a model stores, per row, a hash of what the row was computed from; a run
    recomputes only the rows whose hash changed. -#}

{#- True when this run may reuse stored rows: an incremental run on a table that has the
    hash column (a table of an older layout is computed again in full). -#}
{% macro hashed_incremental(hash_column) -%}
  {%- if not is_incremental() -%}
    {{ return(false) }}
  {%- endif -%}
  {{ return(hash_column in (adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list)) }}
{%- endmacro %}


{#- md5 of a model's compiled SQL, without the warehouse's catalog name (a renamed file
    must not look like changed code) and with every run of white space as one space (nor
    must re-formatted code). -#}
{% macro code_fingerprint(compiled_sql) -%}
  {%- set text = modules.re.sub('\\s+', ' ', compiled_sql | string | replace('"' ~ this.database ~ '".', '')) -%}
  {{ return(local_md5(text | trim)) }}
{%- endmacro %}


{#- FROM-clause tail keeping the rows of `cte` whose (keys, hash_column) is not stored in
    this model; nothing when the run is not incremental. -#}
{% macro not_stored(cte, keys, hash_column, incremental) -%}
  {%- if incremental %}
    left join {{ this }} as stored
        on stored.{{ hash_column }} = {{ cte }}.{{ hash_column }}
        {%- for key in keys %} and stored.{{ key }} = {{ cte }}.{{ key }}{% endfor %}
    where stored.{{ hash_column }} is null
  {%- endif %}
{%- endmacro %}


{#- Post-hook of stg_crm__contacts: delete the contacts whose raw rows are gone (the
    incremental run only writes contacts that are new or changed). -#}
{% macro delete_removed_contacts(raw) -%}
delete from {{ this }}
where contact_key not in (
    select lower({{ as_text('source_system') }}) || ':' || {{ as_text('contact_id') }}
    from {{ raw }}
    where {{ as_text('source_system') }} is not null and {{ as_text('contact_id') }} is not null
)
{%- endmacro %}
