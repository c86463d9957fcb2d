#!/usr/bin/env bash
# Renders the built-in voicemail and queue prompts (used when a config does not record its
# own) with espeak-ng, as 8 kHz mono µ-law WAV. Run from this folder; the output is committed.
set -euo pipefail
say() { # lang voice name text
  mkdir -p "$1"
  espeak-ng -v "$2" -s 150 -w /tmp/vm_prompt.wav "$4"
  sox /tmp/vm_prompt.wav -r 8000 -c 1 -e u-law -b 8 "$1/$3.wav" norm -3
}
en() { say en en-us "$@"; }
fr() { say fr fr-fr "$@"; }
es() { say es es "$@"; }

en vm_offer_caller_id "To be called back on the number you are calling from, press 1. To give another number, enter it now, followed by the pound key."
en vm_enter_number "Please enter the number we should call you back on, followed by the pound key."
en vm_you_entered "You entered"
en vm_confirm_number "If this is right, press 1. To enter it again, press 2."
en vm_invalid_number "Sorry, that number is not valid."
en vm_review "To keep your message, press 1. To record it again, press 2. To cancel it, press 3."
en vm_cancelled "Your message has been deleted. Goodbye."
en vm_sorry "Sorry, your message could not be saved. Please call again later. Goodbye."
fr vm_offer_caller_id "Pour être rappelé au numéro depuis lequel vous appelez, tapez 1. Pour donner un autre numéro, composez-le maintenant, suivi de la touche dièse."
fr vm_enter_number "Veuillez composer le numéro auquel nous pouvons vous rappeler, suivi de la touche dièse."
fr vm_you_entered "Vous avez composé le"
fr vm_confirm_number "Si c'est exact, tapez 1. Pour le composer à nouveau, tapez 2."
fr vm_invalid_number "Désolé, ce numéro n'est pas valide."
fr vm_review "Pour garder votre message, tapez 1. Pour l'enregistrer à nouveau, tapez 2. Pour l'annuler, tapez 3."
fr vm_cancelled "Votre message a été supprimé. Au revoir."
fr vm_sorry "Désolé, votre message n'a pas pu être enregistré. Merci de rappeler plus tard. Au revoir."
es vm_offer_caller_id "Para que le llamemos al número desde el que llama, oprima 1. Para dar otro número, márquelo ahora, seguido de la tecla numeral."
es vm_enter_number "Marque el número al que podemos llamarle, seguido de la tecla numeral."
es vm_you_entered "Usted marcó"
es vm_confirm_number "Si es correcto, oprima 1. Para marcarlo de nuevo, oprima 2."
es vm_invalid_number "Lo siento, ese número no es válido."
es vm_review "Para guardar su mensaje, oprima 1. Para grabarlo de nuevo, oprima 2. Para cancelarlo, oprima 3."
es vm_cancelled "Su mensaje ha sido borrado. Adiós."
es vm_sorry "Lo siento, no se pudo guardar su mensaje. Llame más tarde. Adiós."
en_digits=(zero one two three four five six seven eight nine)
fr_digits=(zéro un deux trois quatre cinq six sept huit neuf)
es_digits=(cero uno dos tres cuatro cinco seis siete ocho nueve)
for d in 0 1 2 3 4 5 6 7 8 9; do
  en "digit_$d" "${en_digits[$d]}"
  fr "digit_$d" "${fr_digits[$d]}"
  es "digit_$d" "${es_digits[$d]}"
done
# Queue announcements: "You are number 3 in line. Your expected wait is about 5 minutes."
en queue_position "You are number"
en queue_position_end "in line."
en queue_wait "Your expected wait is about"
en queue_minutes "minutes."
en queue_minute "minute."
fr queue_position "Vous êtes le numéro"
fr queue_position_end "dans la file d'attente."
fr queue_wait "Votre attente est estimée à environ"
fr queue_minutes "minutes."
fr queue_minute "minute."
es queue_position "Usted es el número"
es queue_position_end "en la fila."
es queue_wait "Su tiempo de espera es de unos"
es queue_minutes "minutos."
es queue_minute "minuto."
# Number words, the ones each language's rule composes numbers from (menus/src/numbers.rs).
for n in $(seq 0 19) 20 30 40 50 60 70 80 90; do en "number_$n" "$n"; done
en number_hundred "hundred"
en number_thousand "thousand"
for n in $(seq 0 16) 20 30 40 50 60 80; do fr "number_$n" "$n"; done
fr number_80 "quatre-vingt"
fr number_and "et"
fr number_hundred "cent"
fr number_thousand "mille"
for n in $(seq 0 29) 30 40 50 60 70 80 90 100 200 300 400 500 600 700 800 900; do es "number_$n" "$n"; done
es number_1 "uno"
es number_and "y"
es number_hundred "ciento"
es number_thousand "mil"
rm -f /tmp/vm_prompt.wav
