{#- Seniority of a free-text job title:
    c_level, vp, director, manager, individual, intern, or unknown (no title).
    Unit-tested through int_lead_scores__fit (see _scoring.yml).

    The title is lower-cased and every run of spaces/punctuation becomes one space,
    padded at both ends, so `like '% vp %'` matches whole words on any warehouse
    (no regex dialect differences). Order matters: interns first ('Intern, CEO
    Office' is an intern), 'vice president' before 'president', 'head of' counts as
    director. English, German and French titles are covered. -#}


{% macro _title_has_any(padded, words) -%}
  ({%- for w in words -%}
    {{ padded }} like '% {{ w }} %'{% if not loop.last %} or {% endif %}
  {%- endfor -%})
{%- endmacro %}

{% macro job_title_seniority(title) -%}
  {%- set padded = "(' ' || regexp_replace(lower(" ~ title ~ "), '[[:space:][:punct:]]+', ' ', 'g') || ' ')" -%}
  {%- set words = {
    'intern': ['intern', 'internship', 'trainee', 'apprentice', 'working student', 'werkstudent',
               'werkstudentin', 'praktikant', 'praktikantin', 'stagiaire', 'alternant'],
    'vp': ['vp', 'svp', 'evp', 'avp', 'vice president', 'vicepresident', 'vice président'],
    'c_level': ['ceo', 'cto', 'cfo', 'coo', 'cmo', 'cio', 'ciso', 'cro', 'cpo', 'cdo', 'chief',
                'president', 'founder', 'co founder', 'cofounder', 'managing director',
                'geschäftsführer', 'geschäftsführerin', 'vorstand', 'pdg', 'président',
                'directeur général', 'directrice générale'],
    'director': ['director', 'head', 'directeur', 'directrice', 'direktor', 'direktorin',
                 'leiter', 'leiterin', 'bereichsleiter', 'abteilungsleiter'],
    'manager': ['manager', 'mgr', 'lead', 'team lead', 'supervisor', 'teamleiter', 'teamleiterin',
                'chef de projet', 'responsable'],
  } -%}
  case
    when {{ title }} is null or trim({{ title }}) = '' then 'unknown'
    {%- for level in ['intern', 'vp', 'c_level', 'director', 'manager'] %}
    when {{ _title_has_any(padded, words[level]) }} then '{{ level }}'
    {%- endfor %}
    else 'individual'
  end
{%- endmacro %}
