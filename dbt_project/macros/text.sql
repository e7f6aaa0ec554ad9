{# Small text helpers shared by staging. Every raw column goes through as_text first,
   so staging accepts VARCHAR, DATE, TIMESTAMP, INTEGER or DOUBLE inputs alike. #}

{# Cast anything to trimmed text; blank becomes null. #}
{% macro as_text(col) %}
  {{ return(adapter.dispatch('as_text')(col)) }}
{% endmacro %}

{% macro default__as_text(col) -%}
  nullif(trim(cast({{ col }} as {{ dbt.type_string() }})), '')
{%- endmacro %}

{# Trim, collapse inner whitespace, blank -> null. #}
{% macro clean_text(col) %}
  {{ return(adapter.dispatch('clean_text')(col)) }}
{% endmacro %}

{% macro default__clean_text(col) -%}
  nullif(trim(regexp_replace(cast({{ col }} as {{ dbt.type_string() }}), '\s+', ' ', 'g')), '')
{%- endmacro %}

{# Proper case ("o'BRIEN mary-jane" -> "O'Brien Mary-Jane"): upper after start, space,
   hyphen or apostrophe, lower elsewhere. DuckDB has no initcap, hence the lambda. #}
{% macro proper_case(col) %}
  {{ return(adapter.dispatch('proper_case')(col)) }}
{% endmacro %}

{% macro default__proper_case(col) -%}
  (select case when _pc_s is not null then array_to_string(list_transform(
      generate_series(1, length(_pc_s)),
      lambda i: case when i = 1 or substr(_pc_s, i::integer - 1, 1) in (' ', '-', '''')
                     then upper(substr(_pc_s, i::integer, 1))
                     else substr(_pc_s, i::integer, 1) end), '') end
   from (select lower({{ clean_text(col) }}) as _pc_s) as _pc)
{%- endmacro %}

{% macro postgres__proper_case(col) -%}
  initcap({{ clean_text(col) }})
{%- endmacro %}

{# Lower-case letters a-z only, accents stripped ("Müller-Lüdenscheidt" -> "mullerludenscheidt"). #}
{% macro letters_key(col) %}
  {{ return(adapter.dispatch('letters_key')(col)) }}
{% endmacro %}

{% macro default__letters_key(col) -%}
  nullif(regexp_replace(strip_accents(lower(cast({{ col }} as {{ dbt.type_string() }}))), '[^a-z]', '', 'g'), '')
{%- endmacro %}

{# Lookup key into the country_codes seed; must match scripts/build_seeds.py::country_key. #}
{% macro country_key(col) %}
  {{ return(letters_key(col)) }}
{% endmacro %}

{# Lookup key into the nicknames seed: lower-case, trimmed, single spaces. #}
{% macro first_name_key(col) %}
  {{ return(adapter.dispatch('first_name_key')(col)) }}
{% endmacro %}

{% macro default__first_name_key(col) -%}
  lower({{ clean_text(col) }})
{%- endmacro %}

{# Money as double: strips currency symbols and spaces; '1,234.50' -> 1234.5; a lone comma
   is a decimal comma ('12,50' -> 12.5). #}
{% macro parse_amount(col) %}
  {{ return(adapter.dispatch('parse_amount')(col)) }}
{% endmacro %}

{% macro default__parse_amount(col) -%}
  (select try_cast(case
      when _am_v like '%.%' then replace(_am_v, ',', '')
      when regexp_full_match(_am_v, '-?\d+,\d{1,2}') then replace(_am_v, ',', '.')
      else replace(_am_v, ',', '')
    end as double)
   from (select regexp_replace({{ as_text(col) }}, '[^0-9.,-]', '', 'g') as _am_v) as _am)
{%- endmacro %}

{# Path of a URL without scheme, host, query or fragment; trailing slash dropped except for
   the root ('https://x.com/pricing/?a=1' -> '/pricing', 'https://x.com' -> '/'). #}
{% macro url_path(col) %}
  {{ return(adapter.dispatch('url_path')(col)) }}
{% endmacro %}

{% macro default__url_path(col) -%}
  (select case when _up_v is null then null
               else coalesce(nullif(regexp_replace(
                      regexp_extract(_up_v, '^(?:[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*)?([^?#]*)', 1),
                      '/+$', ''), ''), '/') end
   from (select {{ as_text(col) }} as _up_v) as _up)
{%- endmacro %}
