{#- Segments: every model named seg_<name> in this project is a segment. Its yml entry
    carries description and config.meta {owner, priority}; segment_memberships unions
    them all. The graph is only filled at execution time, so these macros return
    nothing while dbt parses. -#}

{#- The seg_ model nodes of this project, sorted by name (execution time only). -#}
{% macro outflow_segment_nodes() -%}
  {%- set nodes = [] -%}
  {%- if execute -%}
    {%- for node in graph.nodes.values() | sort(attribute='name') -%}
      {%- if node.resource_type == 'model' and node.package_name == project_name
            and node.name.startswith('seg_') -%}
        {%- do nodes.append(node) -%}
      {%- endif -%}
    {%- endfor -%}
  {%- endif -%}
  {{ return(nodes) }}
{%- endmacro %}


{#- Segment name of a seg_ model: the model name without the prefix. -#}
{% macro outflow_segment_name(node) -%}
  {{ return(node.name[4:]) }}
{%- endmacro %}


{#- Owner and priority of a segment, with a clear error naming what to add. -#}
{% macro outflow_segment_meta(node) -%}
  {%- set meta = node.config.meta or {} -%}
  {%- set owner = meta.get('owner') -%}
  {%- set priority = meta.get('priority') -%}
  {%- set where = "the yml entry of " ~ node.name ~ " (" ~ node.original_file_path ~ " is its SQL)" -%}
  {%- if owner is none or (owner | string | trim) == '' -%}
    {{ exceptions.raise_compiler_error("Segment " ~ node.name ~ " has no owner: add `config: {meta: {owner: <team or person>}}` to " ~ where) }}
  {%- endif -%}
  {%- if priority is none or priority is not number or priority != (priority | int) or priority < 1 -%}
    {{ exceptions.raise_compiler_error("Segment " ~ node.name ~ " needs an integer priority >= 1 (1 = most important) in config.meta.priority of " ~ where ~ ", got: " ~ priority) }}
  {%- endif -%}
  {%- if not node.description -%}
    {{ exceptions.raise_compiler_error("Segment " ~ node.name ~ " has no description: add one to " ~ where ~ " (marketers read it in the destination tools)") }}
  {%- endif -%}
  {{ return({'owner': owner | string | trim, 'priority': priority | int, 'description': node.description}) }}
{%- endmacro %}


{#- The union of all seg_ models: (segment, profile_id, reason, priority, owner). -#}
{% macro outflow_union_segments() -%}
  {%- set nodes = outflow_segment_nodes() -%}
  {%- if not execute or nodes | length == 0 -%}
    select
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as profile_id,
        cast(null as {{ dbt.type_string() }}) as reason,
        cast(null as integer) as priority,
        cast(null as {{ dbt.type_string() }}) as owner
    where 1 = 0
  {%- else -%}
    {%- for node in nodes %}
      {%- if node.unique_id not in model.depends_on.nodes -%}
        {{ exceptions.raise_compiler_error(
            "Segment model " ~ node.name ~ " is not wired into " ~ model.name ~ ": add the line "
            ~ "`-- depends_on: {{ ref('" ~ node.name ~ "') }}` to " ~ model.original_file_path
            ~ ". dbt needs every ref while parsing, before the graph that lists the seg_ models exists, "
            ~ "so this line is the one thing that cannot be derived.") }}
      {%- endif -%}
      {%- set meta = outflow_segment_meta(node) -%}
      {%- set relation = ref(node.name) -%}
      {%- set columns = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list -%}
      {#- no columns: the relation is not built yet (dbt compile before a build) -#}
      {%- if columns and 'profile_id' not in columns -%}
        {{ exceptions.raise_compiler_error("Segment model " ~ node.name ~ " must return a profile_id column (it returns: " ~ (columns | join(', ')) ~ ")") }}
      {%- endif %}
    select
        '{{ outflow_segment_name(node) }}' as segment,
        cast(profile_id as {{ dbt.type_string() }}) as profile_id,
        {% if 'reason' in columns -%} min(cast(reason as {{ dbt.type_string() }})) {%- else -%} cast(null as {{ dbt.type_string() }}) {%- endif %} as reason,
        {{ meta['priority'] }} as priority,
        '{{ meta['owner'] | replace("'", "''") }}' as owner
    from {{ relation }}
    where profile_id is not null
    group by profile_id
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
  {%- endif -%}
{%- endmacro %}


{#- One row per seg_ model: (segment, model_name, description, owner, priority). -#}
{% macro outflow_segment_definitions() -%}
  {%- set nodes = outflow_segment_nodes() -%}
  {%- if nodes | length == 0 -%}
    select
        cast(null as {{ dbt.type_string() }}) as segment,
        cast(null as {{ dbt.type_string() }}) as model_name,
        cast(null as {{ dbt.type_string() }}) as description,
        cast(null as {{ dbt.type_string() }}) as owner,
        cast(null as integer) as priority
    where 1 = 0
  {%- else -%}
    {%- for node in nodes %}
      {%- set meta = outflow_segment_meta(node) %}
    select
        '{{ outflow_segment_name(node) }}' as segment,
        '{{ node.name }}' as model_name,
        '{{ meta['description'] | trim | replace("'", "''") }}' as description,
        '{{ meta['owner'] | replace("'", "''") }}' as owner,
        {{ meta['priority'] }} as priority
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
  {%- endif -%}
{%- endmacro %}
