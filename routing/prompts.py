"""What handlers hear on an offer call, in the handler's language (routing's own small catalog;
the caller's prompts live in the IVR catalogs)."""

from __future__ import annotations

TEXTS = {
    "ru": {
        "whisper": "Звонок. Язык: {language}. Тема: {kind}. Ждёт {minutes} мин. "
        "Чтобы принять, нажмите 1.",
        "offer_taken": "Звонок уже принят другим оператором. До свидания.",
        "caller_gone": "Абонент уже положил трубку. До свидания.",
        "ru": "русский", "uk": "украинский", "en": "английский",
        "surrender": "сдача в плен", "family": "родственник", "pow_info": "о военнопленных",
        "other": "другое",
    },
    "uk": {
        "whisper": "Дзвінок. Мова: {language}. Тема: {kind}. Чекає {minutes} хв. "
        "Щоб прийняти, натисніть 1.",
        "offer_taken": "Дзвінок уже прийняв інший оператор. До побачення.",
        "caller_gone": "Абонент уже поклав слухавку. До побачення.",
        "ru": "російська", "uk": "українська", "en": "англійська",
        "surrender": "здача в полон", "family": "родич", "pow_info": "про військовополонених",
        "other": "інше",
    },
    "en": {
        "whisper": "A call. Language: {language}. Topic: {kind}. Waited {minutes} minutes. "
        "Press 1 to accept.",
        "offer_taken": "Another operator has taken this call. Goodbye.",
        "caller_gone": "The caller has hung up. Goodbye.",
        "ru": "Russian", "uk": "Ukrainian", "en": "English",
        "surrender": "surrender", "family": "a relative", "pow_info": "prisoners of war",
        "other": "other",
    },
}  # fmt: skip


def text(language: str, key: str) -> str:
    catalog = TEXTS.get(language, TEXTS["en"])
    return catalog.get(key, key)


def whisper_text(language: str, caller_language: str, kind: str, minutes: int) -> str:
    """The whisper: the caller's language, the inquiry kind, minutes waited, "press 1"."""
    return text(language, "whisper").format(
        language=text(language, caller_language), kind=text(language, kind), minutes=minutes
    )
