{#- Attribution of activity rows to a profile through int_identity__lookup_keys.
    `keys` is the ordered list of (key_type, column) pairs to try, highest priority
    first; `column` is the activity relation's column holding that key. Use both
    macros with the same keys, with the lookup keys in a CTE named `keys`:

        {%- set attribution_keys = [('contact_id', 'contact_id'), ('email', 'email')] %}
        ...
        select
            orders.order_id,
            {{ attributed_profile(attribution_keys) }},
            ...
        from orders
        {{ attribution_joins('orders', attribution_keys) }}

    Each key type is joined once, as by_<key_type>; the first key that matches wins.
    Rows matching no key keep profile_id and attribution_rule null. -#}

{#- Select expressions: profile_id (first match) and attribution_rule (the key_type
    that matched); rename them with profile_column / rule_column. -#}
{% macro attributed_profile(keys, profile_column='profile_id', rule_column='attribution_rule') -%}
  {%- do outflow_attribution_check_keys(keys) -%}
  {%- if keys | length == 1 -%}
    by_{{ keys[0][0] }}.profile_id as {{ profile_column }},
  {%- else -%}
    coalesce(
      {%- for key_type, column in keys %}by_{{ key_type }}.profile_id{{ ', ' if not loop.last }}{% endfor -%}
    ) as {{ profile_column }},
  {%- endif %}
    case
    {%- for key_type, column in keys %}
        when by_{{ key_type }}.profile_id is not null then '{{ key_type }}'
    {%- endfor %}
    end as {{ rule_column }}
{%- endmacro %}


{#- One left join of the lookup keys per key type, matching `relation`.<column>.
    `lookup` is the CTE (or relation) holding int_identity__lookup_keys. -#}
{% macro attribution_joins(relation, keys, lookup='keys') -%}
  {%- do outflow_attribution_check_keys(keys) -%}
  {%- for key_type, column in keys -%}
    {{ '\n' if not loop.first }}left join {{ lookup }} as by_{{ key_type }}
    on by_{{ key_type }}.key_type = '{{ key_type }}' and by_{{ key_type }}.key_value = {{ relation }}.{{ column }}
  {%- endfor %}
{%- endmacro %}


{#- A misspelt key type would silently leave every row unattributed: fail instead. -#}
{% macro outflow_attribution_check_keys(keys) -%}
  {%- set known = ['contact_id', 'email', 'phone'] -%}
  {%- if keys is string or keys is mapping or not keys -%}
    {{ exceptions.raise_compiler_error("attribution keys must be a non-empty list of (key_type, column) pairs such as [('email', 'email')], got: " ~ keys) }}
  {%- endif -%}
  {%- set seen = [] -%}
  {%- for pair in keys -%}
    {%- if pair is string or pair | length != 2 -%}
      {{ exceptions.raise_compiler_error("attribution keys: each entry must be a (key_type, column) pair, got: " ~ pair) }}
    {%- endif -%}
    {%- if pair[0] not in known -%}
      {{ exceptions.raise_compiler_error("attribution keys: unknown key_type '" ~ pair[0] ~ "' (int_identity__lookup_keys has " ~ (known | join(', ')) ~ ")") }}
    {%- endif -%}
    {%- if pair[0] in seen -%}
      {{ exceptions.raise_compiler_error("attribution keys: key_type '" ~ pair[0] ~ "' is listed twice; list each key type once, in priority order") }}
    {%- endif -%}
    {%- do seen.append(pair[0]) -%}
  {%- endfor -%}
{%- endmacro %}
