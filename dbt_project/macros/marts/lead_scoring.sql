{#- Lead scoring weights. Every number the points model uses lives here; override any
    of them with the dbt var `outflow_lead_scoring` (a mapping), e.g.
      dbt build --vars '{outflow_lead_scoring: {demo_page: {points: 20, cap: 30}}}'
    Unknown keys fail the build, so a typo does not silently keep the default.
    The meaning of each key is documented on lead_scores in _scoring.yml. -#}
{% macro lead_scoring_config() -%}
  {%- set defaults = {
    'half_life_days': 30,
    'lookback_days': 365,
    'seniority': {'c_level': 20, 'vp': 18, 'director': 15, 'manager': 8, 'individual': 3,
                  'intern': 0, 'unknown': 0},
    'company_size': [
        {'min_employees': 1000, 'points': 15},
        {'min_employees': 200, 'points': 12},
        {'min_employees': 50, 'points': 8},
        {'min_employees': 10, 'points': 4},
        {'min_employees': 1, 'points': 1}],
    'industries': {'software': 10, 'technology': 10, 'information technology': 10,
                   'internet': 10, 'saas': 10, 'financial services': 7,
                   'professional services': 5, 'consulting': 5},
    'pricing_page': {'points': 8, 'cap': 20},
    'demo_page': {'points': 12, 'cap': 25},
    'form_fill': {'points': 10, 'cap': 15},
    'email_click': {'points': 3, 'cap': 10},
    'email_open': {'points': 1, 'cap': 4},
    'web_visit': {'points': 1, 'cap': 5},
    'order': {'points': 5, 'cap': 10},
    'bounce': {'points': -10, 'cap': -10},
    'unsubscribe': {'points': -15, 'cap': -15},
    'spam_report': {'points': -30, 'cap': -30},
    'grades': {'A': 60, 'B': 40, 'C': 25, 'D': 10},
  } -%}
  {%- set overrides = var('outflow_lead_scoring', {}) or {} -%}
  {%- if overrides is not mapping -%}
    {{ exceptions.raise_compiler_error("var outflow_lead_scoring must be a mapping of weights, got: " ~ overrides) }}
  {%- endif -%}
  {%- set config = {} -%}
  {%- do config.update(defaults) -%}
  {%- for key, value in overrides.items() -%}
    {%- if key not in defaults -%}
      {{ exceptions.raise_compiler_error("var outflow_lead_scoring: unknown key '" ~ key
          ~ "'; known keys: " ~ (defaults.keys() | sort | join(', '))) }}
    {%- endif -%}
    {%- if value is mapping and defaults[key] is mapping -%}
      {%- set merged = {} -%}
      {%- do merged.update(defaults[key]) -%}
      {%- do merged.update(value) -%}
      {%- do config.update({key: merged}) -%}
    {%- else -%}
      {%- do config.update({key: value}) -%}
    {%- endif -%}
  {%- endfor -%}
  {{ return(config) }}
{%- endmacro %}


{#- Grade letter for a 0-100 score: A/B/C/D at or above their threshold, else F. -#}
{% macro lead_grade(score) -%}
  {%- set g = lead_scoring_config()['grades'] -%}
  case
    when {{ score }} >= {{ g['A'] }} then 'A'
    when {{ score }} >= {{ g['B'] }} then 'B'
    when {{ score }} >= {{ g['C'] }} then 'C'
    when {{ score }} >= {{ g['D'] }} then 'D'
    else 'F'
  end
{%- endmacro %}


{#- Exponential decay: 1 at age 0, 0.5 after half_life_days, 0.25 after two. -#}
{% macro lead_score_decay(age_days) -%}
  power(0.5, greatest({{ age_days }}, 0) / {{ lead_scoring_config()['half_life_days'] }})
{%- endmacro %}
