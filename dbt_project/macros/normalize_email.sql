{#
  normalize_email(col): trim, lower-case, strip surrounding spaces, quotes, angle brackets
  and a 'mailto:' prefix; null when nothing is left. No provider-specific rewriting
  (dots and +tags in Gmail addresses are kept: they are what the destination tools match on).
#}
{% macro normalize_email(col) %}
  {{ return(adapter.dispatch('normalize_email')(col)) }}
{% endmacro %}

{% macro default__normalize_email(col) -%}
  nullif(
    regexp_replace(
      regexp_replace(lower(trim(cast({{ col }} as {{ dbt.type_string() }}))),
        '^[\s"''<]*(mailto:)?[\s"''<]*', ''),
      '[\s"''>;,.]*$', ''),
    '')
{%- endmacro %}

{#
  is_valid_email(col) -> boolean, never null (null input is false).
  RFC 5322 "lite", the pragmatic subset mail tools accept: exactly one '@'; local part of
  atext characters in dot-separated atoms (no leading, trailing or consecutive dots, no
  quoted local parts, no spaces), at most 64 characters; domain of dot-separated labels
  (letters, digits, inner hyphens), at least one dot, TLD of 2-63 letters; total <= 254.
  Apply it to normalize_email(...) output.
#}
{% macro is_valid_email(col) %}
  {{ return(adapter.dispatch('is_valid_email')(col)) }}
{% endmacro %}

{% macro default__is_valid_email(col) -%}
  coalesce(
    length({{ col }}) <= 254
    and length(split_part({{ col }}, '@', 1)) <= 64
    and regexp_full_match({{ col }},
      '[a-z0-9!#$%&''*+/=?^_`{|}~-]+(\.[a-z0-9!#$%&''*+/=?^_`{|}~-]+)*@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}',
      'i'),
    false)
{%- endmacro %}

{# The part after '@' of a valid email, else null. #}
{% macro email_domain(col) %}
  {{ return(adapter.dispatch('email_domain')(col)) }}
{% endmacro %}

{% macro default__email_domain(col) -%}
  case when {{ is_valid_email(col) }} then lower(split_part({{ col }}, '@', 2)) end
{%- endmacro %}
