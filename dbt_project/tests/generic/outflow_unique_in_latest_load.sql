{#- Fails for every value of `column_name` that repeats among the rows of the latest load
    (the newest `loaded_at`) of an incremental delete+insert model keyed on it. Such a
    model deletes every stored row whose key a run loads again, so a key can only repeat
    inside one load: checking the latest finds every duplicate the run added, without
    grouping the whole table. A full build is one load, so it checks every row. -#}
{% test outflow_unique_in_latest_load(model, column_name, loaded_at='loaded_at') %}
select {{ column_name }} as unique_field, count(*) as n_records
from {{ model }}
where {{ loaded_at }} = (select max({{ loaded_at }}) from {{ model }})
    and {{ column_name }} is not null
group by {{ column_name }}
having count(*) > 1
{% endtest %}
