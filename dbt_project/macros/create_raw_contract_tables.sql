{#
  on-run-start hook: make sure every raw contract table exists, so that a warehouse
  holding only some of the raw tables (or none) still builds. Tables that exist are
  left untouched; missing ones are created empty with VARCHAR columns, which staging
  accepts like any other type (it casts everything through varchar).
#}

{% macro raw_contract() %}
  {{ return({
    'crm_contacts': ['contact_id', 'source_system', 'email', 'phone', 'first_name', 'last_name',
                     'street_address', 'city', 'postal_code', 'country', 'date_of_birth', 'company',
                     'job_title', 'industry', 'employee_count', 'lead_source', 'lifecycle_stage',
                     'created_at', 'updated_at'],
    'web_events': ['event_id', 'contact_id', 'anonymous_id', 'email', 'event_type', 'page_url', 'occurred_at'],
    'email_events': ['event_id', 'email', 'campaign_id', 'event_type', 'occurred_at'],
    'orders': ['order_id', 'contact_id', 'email', 'amount', 'currency', 'status', 'ordered_at'],
    'consent_events': ['email', 'phone', 'channel', 'status', 'source', 'occurred_at'],
    'deletion_requests': ['email', 'requested_at'],
    'conversions': ['contact_id', 'email', 'converted_at', 'value'],
  }) }}
{% endmacro %}

{% macro raw_schema() %}
  {{ return(var('outflow_raw_schema', 'raw')) }}
{% endmacro %}

{% macro create_raw_contract_tables() %}
  {{ return(adapter.dispatch('create_raw_contract_tables')()) }}
{% endmacro %}

{% macro default__create_raw_contract_tables() %}
  {%- set schema = raw_schema() -%}
  create schema if not exists {{ schema }};
  {%- for table, columns in raw_contract().items() %}
  create table if not exists {{ schema }}.{{ table }} (
    {%- for column in columns %}
    {{ column }} {{ dbt.type_string() }}{{ "," if not loop.last }}
    {%- endfor %}
  );
  {%- endfor %}
{% endmacro %}
