{#- One CTE keeping, per profile, the columns of the best-ranked contact row.
    `source` is a CTE with profile_id; rows failing `where` never win. Ties are
    broken by contact_key so the choice is deterministic. -#}
{% macro survivor_cte(name, source, columns, order_by, where='true') -%}
{{ name }} as (

    select profile_id, {{ columns | join(', ') }}
    from (
        select
            profile_id,
            {{ columns | join(', ') }},
            row_number() over (
                partition by profile_id
                order by {{ order_by }}, contact_key
            ) as survivor_rank
        from {{ source }}
        where {{ where }}
    ) as ranked
    where survivor_rank = 1

)
{%- endmacro %}


{#- One CTE keeping, per profile, the most frequent non-null value of `column`
    (ties: the value seen in the highest-priority source, then most recently). -#}
{% macro most_frequent_cte(name, source, column) -%}
{{ name }} as (

    select profile_id, {{ column }}
    from (
        select
            profile_id,
            {{ column }},
            row_number() over (
                partition by profile_id
                order by count(*) desc, min(source_rank), max(updated_at) desc, {{ column }}
            ) as survivor_rank
        from {{ source }}
        where {{ column }} is not null
        group by profile_id, {{ column }}
    ) as ranked
    where survivor_rank = 1

)
{%- endmacro %}


{#- Priority of a source system for attributes where one system is the record of
    truth: the CRM first, then the shop, then web forms, then anything else. -#}
{% macro source_system_rank(column) -%}
  case {{ column }} when 'crm' then 1 when 'shop' then 2 when 'web_form' then 3 else 4 end
{%- endmacro %}
