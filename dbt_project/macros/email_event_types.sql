{#- The email event types that features and scores count: opens, clicks, bounces,
    unsubscribes and spam reports. Their readers filter on this list before anything else,
    since sends and deliveries are most of the email rows and count nowhere. One list, so a
    new counted type is added to every prefilter at once. -#}
{% macro counted_email_event_types() -%}
  {{ return(['open', 'click', 'bounce', 'unsubscribe', 'spam_report']) }}
{%- endmacro %}


{#- `column` in (the counted email event types), as SQL. -#}
{% macro is_counted_email_event(column='event_type') -%}
  {{ column }} in ({% for t in counted_email_event_types() %}'{{ t }}'{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}
