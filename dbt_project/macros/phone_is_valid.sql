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

{% macro default__phone_is_valid(e164_col) -%}
  coalesce((
    select bool_or(regexp_full_match(substr({{ e164_col }}, 2 + length(_vr.calling_code)), _vr.valid_number_pattern))
    from {{ ref('phone_regions') }} as _vr
    where {{ e164_col }} is not null
      and _vr.valid_number_pattern <> ''
      and starts_with(substr({{ e164_col }}, 2), _vr.calling_code)
  ), false)
{%- endmacro %}
