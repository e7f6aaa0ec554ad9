{#
  phone_is_valid(e164_col) -> true when an E.164 number (from phone_e164) is a *valid*
  number in phonenumbers' sense: its national significant number matches one of the
  per-type patterns (fixed line, mobile, toll free, ...) of a region with its calling
  code. phone_e164 only checks that a number is possible (its length); a truncated
  number ('+49 15033') is possible but not valid, and must not be an identity key.
  Looser than phonenumbers in one way: for shared calling codes (+1, +7, +44 ...) any
  region of the code counts, not only the one its leading digits select.
#}
{% macro phone_is_valid(e164_col) %}
  {{ return(adapter.dispatch('phone_is_valid')(e164_col)) }}
{% endmacro %}

{#- The patterns are read from the seed when the model runs and written into the SQL as
    literals, one CASE branch per calling code: a regex in a column would be compiled
    again for every row (10 s for 17k contacts); a literal is compiled once. -#}
{% macro default__phone_is_valid(e164_col) -%}
  {%- if not execute -%}
    false
  {%- else -%}
    {%- set seed = adapter.get_relation(database=target.database, schema=target.schema, identifier='phone_regions') -%}
    {%- if seed is none -%}
      {{ exceptions.raise_compiler_error("phone_is_valid needs the phone_regions seed in " ~ target.schema ~ ": run `dbt seed` (or `dbt build`) first") }}
    {%- endif -%}
    {%- set rows = run_query(
        "select calling_code, string_agg('(?:' || valid_number_pattern || ')', '|' order by region) "
        ~ "from " ~ seed ~ " where valid_number_pattern <> '' group by calling_code order by calling_code") -%}
    case
    {%- for row in rows %}
      when starts_with({{ e164_col }}, '+{{ row[0] }}')
        then regexp_full_match(substr({{ e164_col }}, {{ 2 + row[0] | length }}), '{{ row[1] | replace("'", "''") }}')
    {%- endfor %}
      else false
    end
  {%- endif -%}
{%- endmacro %}
