{#
  phone_e164(phone_col, region_col) -> '+<calling code><national significant number>' or null.

  A SQL port of the parts of Google libphonenumber (python `phonenumbers`) that decide the
  E.164 form of a *possible* number, driven by the phone_regions seed (generated from
  phonenumbers' metadata by scripts/build_seeds.py):
    1. Strip an extension (ext/x/# + digits) and formatting; refuse text with letters or
       other non-phone characters (phonenumbers would also read vanity letters; we do not).
    2. International when the text starts with '+', or the digits start with the region's
       international (IDD) prefix (011 for US, 00 for most, 0011 for AU ...) not followed by 0,
       or with '00' in any region (looser than phonenumbers, which only knows the region's IDD).
       The calling code is the 1-3 digit prefix that is a known calling code.
    3. Otherwise national for the region: region_col when it is a known region, else
       var('outflow_default_phone_region'). Digits that start with the region's own calling
       code are read as international when phonenumbers would (the rest fits the region's
       number pattern and the whole does not, or the whole is too long).
    4. The national (trunk) prefix is stripped with the region's national_prefix_for_parsing
       regex and transform rule, unless that turns a number matching the region's general
       pattern into one that does not, or leaves a length that is not possible.
    5. The result must have a possible length for the calling code's main region
       (phonenumbers.is_possible_number, without local-only lengths); else null.
  Not covered (the SQL is looser than phonenumbers.is_valid_number): per-type patterns
  (fixed line vs mobile ranges), NANP area-code validity beyond the general pattern, carrier
  codes, vanity letters. See docs in _staging.yml.
#}
{% macro phone_e164(phone_col, region_col=none) %}
  {{ return(adapter.dispatch('phone_e164')(phone_col, region_col)) }}
{% endmacro %}

{# Strip the national prefix from num using metadata columns with prefix m (phonenumbers'
   _maybe_strip_national_prefix_carrier_code). #}
{% macro _phone_strip_national_prefix(num, m) -%}
  case
    when {{ num }} is null or coalesce({{ m }}national_prefix_for_parsing, '') = ''
      or not regexp_matches({{ num }}, '^(?:' || {{ m }}national_prefix_for_parsing || ')')
      then {{ num }}
    when regexp_full_match({{ num }}, {{ m }}national_number_pattern)
      and not regexp_full_match({{ _phone_apply_prefix_rule(num, m) }}, {{ m }}national_number_pattern)
      then {{ num }}
    else {{ _phone_apply_prefix_rule(num, m) }}
  end
{%- endmacro %}

{% macro _phone_apply_prefix_rule(num, m) -%}
  case
    when coalesce({{ m }}national_prefix_transform_rule, '') <> ''
      and {{ m }}national_prefix_groups > 0
      and regexp_replace({{ num }}, '^(?:' || {{ m }}national_prefix_for_parsing || ').*$',
                         '\' || cast({{ m }}national_prefix_groups as varchar)) <> ''
      then regexp_replace({{ num }}, '^(?:' || {{ m }}national_prefix_for_parsing || ')',
                          {{ m }}national_prefix_transform_rule)
    else regexp_replace({{ num }}, '^(?:' || {{ m }}national_prefix_for_parsing || ')', '')
  end
{%- endmacro %}

{% macro _phone_length_in(len_expr, lengths_col) -%}
  list_contains(string_split({{ lengths_col }}, '|'), cast({{ len_expr }} as varchar))
{%- endmacro %}

{% macro default__phone_e164(phone_col, region_col) -%}
  {%- set regions = ref('phone_regions') -%}
  {%- set default_region = var('outflow_default_phone_region', 'US') -%}
  (
  select case when _p5.ok and _p5.viable then '+' || _p5.cc || _p5.nsn end
  from (
    select _p4.cc, _p4.nsn, _p4.viable,
      _p4.cc is not null and _p4.nsn is not null and {{ _phone_length_in('length(_p4.nsn)', '_mr.possible_lengths') }} as ok
    from (
      select _p3.cc, _p3.viable,
        case
          when {{ _phone_length_in('length(_p3.stripped)', '_p3.m_possible_lengths') }}
            or length(_p3.stripped) > _p3.m_max_length
            then _p3.stripped
          else _p3.nat
        end as nsn
      from (
        select _p2x.*, {{ _phone_strip_national_prefix('_p2x.nat', '_p2x.m_') }} as stripped
        from (
          select
            case when _p2.intl is not null then _cr.calling_code else _p2.d_calling_code end as cc,
            case
              when _p2.intl is not null then substr(_p2.intl, length(_cr.calling_code) + 1)
              when _p2.cc_rest is not null and (
                  (not regexp_full_match(_p2.digits, _p2.d_national_number_pattern)
                   and regexp_full_match(_p2.cc_rest_stripped, _p2.d_national_number_pattern))
                  or (length(_p2.digits) > _p2.d_max_length
                      and not {{ _phone_length_in('length(_p2.digits)', '_p2.d_local_only_lengths') }}))
                then _p2.cc_rest_stripped
              else _p2.digits
            end as nat,
            {%- for col in ['national_prefix_for_parsing', 'national_prefix_transform_rule', 'national_prefix_groups',
                            'national_number_pattern', 'possible_lengths', 'max_length'] %}
            case when _p2.intl is not null then _cr.{{ col }} else _p2.d_{{ col }} end as m_{{ col }},
            {%- endfor %}
            _p2.digits, _p2.viable
          from (
            select _p1x.*, {{ _phone_strip_national_prefix('_p1x.cc_rest', '_p1x.d_') }} as cc_rest_stripped
            from (
              select
                _p1.digits,
                case
                  when not _p1.viable then null
                  when _p1.has_plus then _p1.digits
                  when _p1.idd_rest is not null and _p1.idd_rest <> _p1.digits
                    and _p1.idd_rest <> '' and left(_p1.idd_rest, 1) <> '0' then _p1.idd_rest
                  when _p1.digits like '00%' and substr(_p1.digits, 3, 1) not in ('', '0') then substr(_p1.digits, 3)
                end as intl,
                case when _p1.viable and not _p1.has_plus and starts_with(_p1.digits, _p1.d_calling_code)
                  then substr(_p1.digits, length(_p1.d_calling_code) + 1) end as cc_rest,
                _p1.viable,
                {%- for col in ['calling_code', 'national_prefix_for_parsing', 'national_prefix_transform_rule',
                                'national_prefix_groups', 'national_number_pattern', 'possible_lengths',
                                'local_only_lengths', 'max_length'] %}
                _p1.d_{{ col }}{{ "," if not loop.last }}
                {%- endfor %}
              from (
                select
                  _p0.viable, _p0.has_plus, _p0.digits,
                  case when _dr.international_prefix <> ''
                    then regexp_replace(_p0.digits, '^(?:' || _dr.international_prefix || ')', '') end as idd_rest,
                  {%- for col in ['calling_code', 'national_prefix_for_parsing', 'national_prefix_transform_rule',
                                  'national_prefix_groups', 'national_number_pattern', 'possible_lengths',
                                  'local_only_lengths', 'max_length'] %}
                  _dr.{{ col }} as d_{{ col }}{{ "," if not loop.last }}
                  {%- endfor %}
                from (
                  select
                    regexp_full_match(_px.s, '[\s(\[]*\+?[\d\s().\[\]/~-]*\d[\d\s().\[\]/~-]*')
                      and length(regexp_replace(_px.s, '\D', '', 'g')) between 2 and 24 as viable,
                    regexp_matches(_px.s, '^[\s(\[]*\+') as has_plus,
                    regexp_replace(_px.s, '\D', '', 'g') as digits,
                    coalesce(
                      (select max(_rk.region) from {{ regions }} as _rk
                       where _rk.region = upper({{ as_text(region_col) if region_col is not none else 'null' }})
                         and _rk.region <> '001'),
                      '{{ default_region }}') as region
                  from (
                    select regexp_replace(regexp_replace({{ as_text(phone_col) }},
                        '(?i)\s*[,;]?\s*(?:ext\.?|extension|x|#)\s*\d{1,7}\s*$', ''),
                        '^(\+?\d+)\.0+$', '\1') as s
                  ) as _px
                ) as _p0
                left join {{ regions }} as _dr on _dr.region = _p0.region
              ) as _p1
            ) as _p1x
          ) as _p2
          left join {{ regions }} as _cr
            on _p2.intl is not null and _cr.is_main_region and starts_with(_p2.intl, _cr.calling_code)
        ) as _p2x
      ) as _p3
    ) as _p4
    left join {{ regions }} as _mr on _mr.is_main_region and _mr.calling_code = _p4.cc
  ) as _p5
  )
{%- endmacro %}
