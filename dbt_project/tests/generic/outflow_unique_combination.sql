{#- Fails for every combination of `columns` that occurs more than once
    (dbt_utils.unique_combination_of_columns, which we cannot install here). -#}
{% test outflow_unique_combination(model, columns) %}
select {{ columns | join(', ') }}, count(*) as occurrences
from {{ model }}
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
