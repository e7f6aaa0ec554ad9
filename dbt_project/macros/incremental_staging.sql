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
